"""Split text into sentences as character spans (no text is changed or lost)."""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "mt",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "cf",
    "al",
    "fig",
    "figs",
    "no",
    "nos",
    "vol",
    "pp",
    "p",
    "inc",
    "ltd",
    "co",
    "corp",
    "dept",
    "u.s",
    "u.k",
    "u.n",
    "e.u",
    "approx",
    "est",
    "gen",
    "gov",
    "rev",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "ca",
    "ph.d",
    "a.m",
    "p.m",
}

# A candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace.
# A match starts only where a run of terminal punctuation starts (the lookbehind: the mark
# just matched does not follow another) and never gives back what it matched (possessive):
# the regex without them tried every dot of a run as a start again, each scanning to the
# end of the run, so 20,000 dots took 5 s. (The lookbehind after the first mark, rather
# than before it, keeps the regex engine's fast scan for the first character.)
_END = re.compile(r"([.!?\u2026](?<![.!?\u2026]{2})[.!?\u2026]*+)([\"'\u201d\u2019)\]]*+)(\s++)")
_END_HERE = re.compile(
    r"([.!?\u2026]++)([\"'\u201d\u2019)\]]*+)(\s++)"
)  # at ``start``, mid-run or not
_CJK_END = re.compile(r"[\u3002\uff01\uff1f]++[\u201d\u300d\u300f)\uff09]*+")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")  # searched in a 40-character window only
_NEXT_STARTS_SENTENCE = re.compile(r"[\"'\u201c\u2018(\[]*+[A-Z0-9\u00c0-\u024f\u0370-\u04ff]")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``dot`` ends an abbreviation or an initial."""
    # Look only at the few characters before the dot: searching all of ``text[:dot]`` made a
    # long paragraph quadratic (a 100 KB one took minutes). No abbreviation is that long.
    match = _WORD_BEFORE.search(text, max(0, dot - 40), dot)
    if not match:
        return False
    word = match.group(1).lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and text[match.start(1)].isupper())


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(s, e)`` of the sentences in ``text[start:end]``, trimmed of outer whitespace.

    Boundaries: terminal punctuation followed by whitespace and a capital, digit or quote
    (not after a known abbreviation or an initial), CJK full stops, and line breaks.
    """
    end = len(text) if end is None else end
    cuts: set[int] = set()
    first = _END_HERE.match(text, start, end)  # the lookbehind sees text before ``start``
    for match in ([first] if first else []) + list(_END.finditer(text, start, end)):
        if match.group(1) == "." and _is_abbreviation(text, match.start(1)):
            continue
        after = match.end()
        if "\n" in match.group(3) or after >= end or _NEXT_STARTS_SENTENCE.match(text, after):
            cuts.add(match.end(2))
    for match in _CJK_END.finditer(text, start, end):
        cuts.add(match.end())
    for match in re.finditer(r"\n", text[start:end]):
        cuts.add(start + match.start())
    spans = []
    position = start
    for cut in sorted(cuts) + [end]:
        if cut <= position:
            continue
        piece_start, piece_end = position, cut
        while piece_start < piece_end and text[piece_start].isspace():
            piece_start += 1
        while piece_end > piece_start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > piece_start:
            spans.append((piece_start, piece_end))
        position = cut
    return spans
