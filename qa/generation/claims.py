"""A generated answer cut into claims: its sentences, each with the passage numbers it cites.

Models write citations as ``... nine cities [1].``, ``... nine cities. [1]`` or
``[1][2]`` / ``[1, 2]``; all of these give the sentence its numbers. Numbers outside the
passages the model was given are removed from the claim (and counted), never followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.ingest.sentences import sentence_spans

# One group of markers: "[1]", "[1, 2]", "[1; 3]" (at most three digits: a year in brackets
# such as "[2020]" is not a citation, and neither is a number past the given passages).
MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_MARKERS_ONLY = re.compile(r"(?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_TRAILING = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*$")


@dataclass
class Claim:
    """One sentence of a generated answer."""

    raw: str  # as the model wrote it, markers included (what a stream already showed)
    text: str  # without markers or list bullets: what is checked against the passages
    cited: list[int] = field(default_factory=list)  # 1-based passage numbers, given ones only
    invalid: list[int] = field(default_factory=list)  # numbers of passages that weren't given

    def with_markers(self) -> str:
        """The claim with its valid citations before its final punctuation: ``... cities [1].``"""
        return with_markers(self.text, self.cited)


def with_markers(text: str, numbers: list[int]) -> str:
    """``text`` with ``[n]`` markers placed before its final punctuation."""
    if not numbers:
        return text
    marks = "".join(f"[{n}]" for n in numbers)
    end = _TRAILING.search(text)
    if end is None:
        return f"{text} {marks}"
    return f"{text[: end.start()].rstrip()} {marks}{end.group(0)}"


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.split(r"\s*[,;]\s*", group.strip())]


def split_claims(answer: str, passages: int) -> list[Claim]:
    """The sentences of ``answer`` with the citations each makes (``passages`` were given).

    A sentence that starts with markers (``cities. [1] The corridor ...``) hands them to the
    sentence before it, where the model meant them.
    """
    pieces: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(answer):
        raw = answer[start:end]
        lead = _MARKERS_ONLY.match(raw)
        if lead and pieces:
            moved = [n for group in MARKER.findall(lead.group(0)) for n in _numbers(group)]
            before, numbers = pieces[-1]
            pieces[-1] = (f"{before} {lead.group(0).strip()}", numbers + moved)
            raw = raw[lead.end() :].strip()
            if not raw:
                continue
        numbers = [n for group in MARKER.findall(raw) for n in _numbers(group)]
        pieces.append((raw, numbers))
    claims = []
    for raw, numbers in pieces:
        text = _clean(raw)
        if not text:
            continue
        cited = list(dict.fromkeys(n for n in numbers if 1 <= n <= passages))
        invalid = [n for n in numbers if not 1 <= n <= passages]
        claims.append(Claim(raw=raw, text=text, cited=cited, invalid=invalid))
    return claims


def _clean(raw: str) -> str:
    """A sentence without citation markers, list bullets or stray spaces before punctuation."""
    text = MARKER.sub("", raw)
    text = _LIST_ITEM.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return " ".join(text.split())
