"""The service's feedback desk: take a reader's verdict, record unanswered questions (when
asked to), page through records, report what went wrong, export labelled questions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from qa.config import Settings
from qa.encoding import Embedder
from qa.errors import Forbidden, InvalidInput
from qa.feedback.export import Export, export_lines, named_passages
from qa.feedback.grouping import GroupParams, Report, build_report
from qa.feedback.records import FeedbackIn, FeedbackRecord
from qa.feedback.store import FeedbackStore
from qa.search import Reply, Turn
from qa.store import Collection

PERIOD = re.compile(r"(\d{1,6})([mhdw])")
SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?")


def parse_since(value: str | None) -> str | None:
    """``7d``, ``12h``, ``30m``, ``2w`` (ago) or an ISO date/time (UTC) as the stored time
    format; ``None`` for no limit."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    match = PERIOD.fullmatch(text)
    if match is not None:
        ago = int(match.group(1)) * SECONDS[match.group(2)]
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))
    if DATE.fullmatch(text):
        return text if text.endswith("Z") or "T" not in text else f"{text}Z"
    raise InvalidInput(
        f"since: {value!r} is not a period (30m, 12h, 7d, 2w) or a date (2024-05-01)"
    )


class FeedbackDesk:
    """Feedback of every collection, through the service (``service.feedback``)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        collection: Callable[[str | None], Collection],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.collection = collection  # the service's loader: validates names, raises 404s

    def store(self, collection: str) -> FeedbackStore:
        """The feedback store of a collection (which must exist)."""
        name = self.collection(collection).name
        directory = self.settings.collection_dir(name)
        return FeedbackStore(directory, self.settings.feedback_max_records)

    def record(self, item: FeedbackIn, collection: str | None = None) -> FeedbackRecord:
        """Store a reader's verdict (feedback must be on; the comment within its cap)."""
        if not self.settings.feedback:
            raise Forbidden(
                "feedback is switched off on this server (QA_FEEDBACK)", code="feedback_disabled"
            )
        cap = self.settings.feedback_max_comment_chars
        if item.comment is not None and len(item.comment) > cap:
            raise InvalidInput(f"comment: at most {cap} characters (it has {len(item.comment)})")
        name = self.collection(collection or item.collection).name
        return self.store(name).add(item, name)

    def record_unanswered(
        self, reply: Reply, question: str, history: Sequence[Turn], collection: str
    ) -> FeedbackRecord | None:
        """Keep a question the service did not answer, when QA_RECORD_UNANSWERED is on."""
        if not self.settings.record_unanswered or reply.answer is not None:
            return None
        item = FeedbackIn(
            question=question,
            rating="not_helpful",  # not stored for this kind; the model wants one
            history=list(history),
            passage_ids=[p.passage_id for p in reply.passages],
            generation=reply.generation or None,
        )
        return self.store(collection).add(item, collection, kind="unanswered")

    def records(
        self, collection: str, since: str | None = None, after: int = 0, limit: int = 100
    ) -> list[FeedbackRecord]:
        """One page of a collection's records, oldest first (``since`` as :func:`parse_since`)."""
        return self.store(collection).records(parse_since(since), after, limit)

    def _all(self, collection: str, since: str | None) -> list[FeedbackRecord]:
        """Every record since ``since`` (in pages of 1,000)."""
        store, start = self.store(collection), parse_since(since)
        out: list[FeedbackRecord] = []
        while True:
            page = store.records(start, out[-1].id if out else 0, 1000)
            out += page
            if len(page) < 1000:
                return out

    def report(
        self, collection: str, since: str | None = None, params: GroupParams | None = None
    ) -> Report:
        """Unanswered questions and not-helpful answers since ``since``, grouped."""
        name = self.collection(collection).name
        records = self._all(name, since)
        return build_report(name, parse_since(since), records, self.embedder.encode_queries, params)

    def export(self, collection: str, since: str | None = None) -> Export:
        """The records as labelled questions (checked against the live collection)."""
        loaded = self.collection(collection)
        records = self._all(loaded.name, since)
        return export_lines(records, loaded.passages(named_passages(records)))
