"""Release notes: pages about what changed in which version ("What's New In Python 3.0", a
changelog), ranked below the pages that document how things work now.

A release note restates a feature in a line ("Like str, the bytes type is immutable"), close
to any question about it, so in a documentation site such pages crowd out the reference page
that answers: in the Python documentation they hold 14% of the passages and took first place
for 26 of the 161 tuning-half questions whose answer did not come first. In the hybrid
ranking's rescored head they lose ``FusionParams.history_weight``, unless the question asks
about history itself (a version, a release, what was added, changed or removed, when, or by
whom), which release notes answer best.
"""

from __future__ import annotations

import re

import numpy as np

from qa.search.answer_type import Kind, expected
from qa.store import Collection

_ASKS = re.compile(
    r"\b(?:releas\w*|version\w*|added|introduc\w*|new in|changed|deprecat\w*|removed|histor\w*"
    r"|what['\u2019]?s new|changelog)\b|\d+\.\d+",
    re.IGNORECASE,
)


def asks_about_history(question: str) -> bool:
    """Whether ``question`` asks what release notes answer: about a version or a release, what
    was added, changed or removed, or when or by whom (``qa.search.answer_type``)."""
    return bool(_ASKS.search(question)) or expected(question) in (Kind.TIME, Kind.PERSON)


def history_rows(collection: Collection, pattern: str) -> np.ndarray:
    """Row mask of the passages of release-note pages (title or id matching ``pattern``),
    made once per collection generation."""

    def build() -> np.ndarray:
        found = re.compile(pattern, re.IGNORECASE).search
        return collection.meta.document_mask(lambda d: bool(found(d.title) or found(d.id)))

    return collection.cached_mask(("history", pattern), build)
