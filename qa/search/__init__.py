"""Question to cited answer: follow-ups folded into the query, dense and BM25 retrieval
fused, the head rescored by its best sentences, the answer sentence chosen (or abstained)."""

from qa.search.answer import AnswerParams, AnswerSpan, Citation, RankedPassage, Reply, build_reply
from qa.search.followups import FollowUpParams, Turn, build_query
from qa.search.fusion import FusionParams
from qa.search.links import document_url, link_citations, web_address
from qa.search.params import CollectionParams, SearchParams
from qa.search.retriever import Hit, Mode, Query, Retriever

__all__ = [
    "AnswerParams",
    "AnswerSpan",
    "Citation",
    "CollectionParams",
    "FollowUpParams",
    "FusionParams",
    "Hit",
    "Mode",
    "Query",
    "RankedPassage",
    "Reply",
    "Retriever",
    "SearchParams",
    "Turn",
    "build_query",
    "build_reply",
    "document_url",
    "link_citations",
    "web_address",
]
