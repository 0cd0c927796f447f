"""Readers' verdicts on answers: stored beside each collection's index, grouped into a
report of what went wrong, and exported as labelled questions for ``qa eval``, ``qa tune``
and the indexing gate. Feedback feeds measurement, never a silent reweighting."""

from qa.feedback.export import Export, export_lines, named_passages
from qa.feedback.grouping import GroupParams, Report, build_report, cluster
from qa.feedback.records import REASONS, AnswerShown, FeedbackIn, FeedbackRecord
from qa.feedback.store import FEEDBACK, FeedbackStore

__all__ = [
    "FEEDBACK",
    "REASONS",
    "AnswerShown",
    "Export",
    "FeedbackIn",
    "FeedbackRecord",
    "FeedbackStore",
    "GroupParams",
    "Report",
    "build_report",
    "cluster",
    "export_lines",
    "named_passages",
]
