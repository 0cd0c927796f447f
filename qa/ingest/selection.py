"""Which files of a folder go in: ``--include``/``--exclude`` glob patterns and ``.qaignore``.

Patterns use gitignore's syntax (the ``pathspec`` library): ``*.md`` matches at any depth,
``drafts/`` a folder and all under it, ``/notes.txt`` only at the top, ``!keep.md`` takes a
file back. They are matched against the path relative to the folder given to ``qa index``;
a ``.qaignore`` file in any folder applies to the files under that folder, relative to it,
as ``.gitignore`` does (a deeper one can take back what a higher one ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILE = ".qaignore"
# a .qaignore larger than this is not a list of patterns someone wrote: refused, not parsed
MAX_IGNORE_BYTES = 1 << 20


@dataclass(frozen=True)
class Ignore:
    """One folder's ``.qaignore``: its patterns, relative to ``base`` (posix, '' = the root)."""

    base: str
    where: str  # how it is named in reasons (``docs/.qaignore``)
    spec: GitIgnoreSpec


def _spec(patterns: Sequence[str]) -> GitIgnoreSpec | None:
    return GitIgnoreSpec.from_lines(list(patterns)) if patterns else None


@dataclass(frozen=True)
class Selection:
    """The ``--include`` and ``--exclude`` patterns of one indexing run."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _include: GitIgnoreSpec | None = field(default=None, compare=False, repr=False)
    _exclude: GitIgnoreSpec | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Selection:
        """A selection from the patterns as the user gave them (checked here: a bad one raises
        ``ValueError`` naming it)."""
        for pattern in (*include, *exclude):
            if not pattern.strip() or not _valid(pattern):
                raise ValueError(f"invalid pattern {pattern!r}")
        return cls(tuple(include), tuple(exclude), _spec(include), _spec(exclude))

    def reason(self, relative: str, is_dir: bool, ignores: Sequence[Ignore]) -> str | None:
        """Why the file or folder at ``relative`` (posix, inside the indexed folder) is left
        out, or ``None`` when it goes in."""
        name = relative + "/" if is_dir else relative
        verdict: str | None = None
        for ignore in ignores:  # the deepest .qaignore has the last word, as in git
            inner = name[len(ignore.base) + 1 :] if ignore.base else name
            check = ignore.spec.check_file(inner)
            if check.include is not None and check.index is not None:
                pattern = ignore.spec.patterns[check.index].pattern
                verdict = f"ignored by {ignore.where} ({pattern!r})" if check.include else None
        if verdict is not None:
            return verdict
        if self._exclude is not None:
            check = self._exclude.check_file(name)
            if check.include and check.index is not None:
                return f"excluded by --exclude {self._exclude.patterns[check.index].pattern!r}"
        if not is_dir and self._include is not None and not self._include.match_file(name):
            return "not matched by any --include pattern (" + ", ".join(self.include) + ")"
        return None


def read_ignore(folder: Path, base: str, shown: str) -> Ignore | None:
    """The ``.qaignore`` of ``folder`` (``None`` when it has none or it can't be read)."""
    path = folder / IGNORE_FILE
    try:
        if not path.is_file() or path.stat().st_size > MAX_IGNORE_BYTES:
            return None
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    where = f"{shown}/{IGNORE_FILE}" if shown else IGNORE_FILE
    return Ignore(base, where, GitIgnoreSpec.from_lines([x for x in lines if _valid(x)]))


def _valid(line: str) -> bool:
    """Whether a line of a ``.qaignore`` is a pattern pathspec accepts (a malformed one is
    left out alone, so the rest of the file still applies)."""
    try:
        GitIgnoreSpec.from_lines([line])
    except Exception:  # noqa: BLE001 - pathspec raises several kinds for a malformed glob
        return False
    return True
