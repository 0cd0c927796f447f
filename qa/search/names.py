"""Names a question asks about that the documents never mention: an API such as
``glob.translate()`` or ``@typing.override`` (its module or class mentioned, the name itself
nowhere), or an option such as ``--disable-gil``.

Such a question is about something the collection does not document (a newer release, another
tool), and whatever the search finds is at best about a neighbour of it, so the reply says that
the documents never mention the name instead of answering. On the Python 3.11 documentation's
tuning halves, 9 of the 61 questions the documentation does not answer name such an API (all
from Python 3.12 and 3.13); none of the 304 answerable ones does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np

from qa.store import Collection
from qa.store.lexical import tokenize

# a dotted name (module.function, Class.method, a.b.c), after an optional "@"; or a long option
_NAMES = re.compile(
    r"(?<![\w.@-])@?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w-])|(?<![\w-])(--[A-Za-z][\w-]*\w)"
)
# what ends a file or host name, not an API ("settings.yaml", "python.org")
_SUFFIXES = (
    "bat c cfg com conf csv dll exe gz h htm html ini io js json log md net org pdf py pyc pyd "
    "pyi pyw rst sh so tar toml tsv txt xml yaml yml zip"
)
_NOT_API = frozenset(_SUFFIXES.split())
_CHECKED_NAMES = 5  # names looked up per question at most (a question of 100 names reads no more)
_CHECKED_ROWS = 2_000  # rows read to find a name at most; past that it counts as mentioned
_BATCH = 500


def asked_names(question: str) -> Iterator[str]:
    """The dotted API names and long options in ``question``, in order (file and host names
    left out)."""
    for match in _NAMES.finditer(question):
        dotted, option = match.groups()
        if option:
            yield option
        elif dotted.rsplit(".", 1)[1].lower() in _NOT_API:
            continue
        elif max(map(len, dotted.split("."))) > 1:  # not an abbreviation ("e.g", "U.S")
            yield dotted


def unknown_name(
    question: str, collection: Collection, allowed: np.ndarray | None = None
) -> str | None:
    """A name ``question`` asks about that no passage the reader may see (``allowed`` rows)
    mentions, while one does mention its module or class ("glob" but never "glob.translate");
    ``None`` when there is none, or when the question also names something the passages do
    mention ("I patched mymodule.func with mock.patch": the reader's own code beside a
    documented API). A dotted name whose qualifier is nowhere either is the reader's own
    ("my_list.sort"), and is not held against the question."""
    unknown = None
    for name in itertools.islice(asked_names(question), _CHECKED_NAMES):
        if _mentioned(collection, name, allowed):
            return None
        if unknown is None and (
            name.startswith("--") or _mentioned(collection, name.rsplit(".", 1)[0], allowed)
        ):
            unknown = name
    return unknown


def _mentioned(collection: Collection, name: str, allowed: np.ndarray | None) -> bool:
    """Whether a passage (its text or its document's title) holds ``name``, case ignored.

    Only passages holding every BM25 term of ``name`` are read, a batch at a time; a name
    whose terms are too common to check within :data:`_CHECKED_ROWS` counts as mentioned.
    """
    terms = tokenize([name])[0]
    if not terms:
        return True  # nothing to look it up by (stopwords, one-letter parts): assume it is
    rows = collection.lexical.rows_with(terms)
    if allowed is not None:
        rows = rows[allowed[rows]]
    if len(rows) > _CHECKED_ROWS:
        return True
    wanted = name.lower()
    ids = collection.ids[rows]
    for start in range(0, len(ids), _BATCH):
        found = collection.passages(ids[start : start + _BATCH].tolist())
        if any(wanted in f"{p.title}\n{p.text}".lower() for p in found.values()):
            return True
    return False
