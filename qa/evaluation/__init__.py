"""Offline evaluation: how well and how fast the service ranks labelled questions.

BEIR-style, in stages kept apart: ``datasets`` (questions and gold), ``prepare`` (the cached
collection), ``run`` (asking the service), ``metrics`` (ir_measures), ``report`` (the typed
report, made by ``build``; ``markdown`` for people) and ``gate`` (a run against a baseline
report); :func:`evaluate` ties them together.
"""

from qa.errors import BaselineError, DatasetError
from qa.evaluation.datasets import Dataset, Question, load_beir, load_dataset
from qa.evaluation.evaluate import DEFAULT_RETRIEVER, RETRIEVERS, evaluate
from qa.evaluation.gate import Regression, compare, load_baseline
from qa.evaluation.markdown import markdown, summary_lines
from qa.evaluation.metrics import HEADLINE, compute_metrics
from qa.evaluation.prepare import ensure_collection
from qa.evaluation.report import Report, bundle

__all__ = [
    "DEFAULT_RETRIEVER",
    "HEADLINE",
    "RETRIEVERS",
    "BaselineError",
    "Dataset",
    "DatasetError",
    "Question",
    "Regression",
    "Report",
    "bundle",
    "compare",
    "compute_metrics",
    "ensure_collection",
    "evaluate",
    "load_baseline",
    "load_beir",
    "load_dataset",
    "markdown",
    "summary_lines",
]
