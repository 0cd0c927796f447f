"""The sentence check on its own: real model, the seed collection's stored sentence vectors."""

from __future__ import annotations

from qa.generation.claims import split_claims
from qa.generation.verify import Source, SupportParams, judge
from qa.service import QAService

QUESTION = "How many cities does the G60 corridor connect?"


def _sources(service: QAService) -> tuple[list[Source], int]:
    """The top passages as the model would be given them, and the number of the one that
    says how many cities the corridor connects."""
    reply = service.ask(QUESTION)
    passages = reply.passages[:5]
    collection = service.collection(service.settings.collection)
    stored = collection.sentences(p.passage_id for p in passages)
    sources = [Source(p.text, stored[p.passage_id]) for p in passages]
    number = next(n for n, p in enumerate(passages, start=1) if "nine cities" in p.text)
    return sources, number


def test_each_sentence_judged_against_what_it_cites(seed_service: QAService) -> None:
    sources, n = _sources(seed_service)
    other = 1 if n != 1 else 2
    answer = (
        f"The G60 Corridor connects nine cities [{n}]. "  # said by the passage: kept
        f"The corridor is mainly known for its beaches and ski resorts [{n}]. "  # no figure
        f"The G60 Corridor connects twelve cities [{n}]. "  # a changed figure
        f"The G60 Corridor connects nine cities [{other}]. "  # the wrong passage cited
        "Songjiang is in Shanghai."  # no citation
    )
    claims = split_claims(answer, len(sources))
    verdicts = judge(claims, sources, seed_service.embedder, SupportParams())
    assert [v.kept for v in verdicts] == [True, False, False, False, False]
    reasons = [v.reason for v in verdicts]
    assert reasons[:3] == [None, "unsupported", "number_not_in_sources"]
    assert reasons[3] in ("unsupported", "number_not_in_sources")  # true, but not there
    assert reasons[4] == "no_citation"
    assert verdicts[0].support >= SupportParams().min_support > verdicts[1].support
    # the evidence of a kept sentence is its passage's sentence that says so
    start, end = verdicts[0].evidence[n]
    assert "nine cities" in sources[n - 1].text[start:end]
