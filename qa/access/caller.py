"""Who is asking: a user, the groups whose documents they may read, the collections they may
use and what they may do there. Resolved once per request by :mod:`qa.access.resolve`;
everything past the gate looks only at this, never at how the caller was identified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["none", "read", "write", "admin"]
RANK: dict[str, int] = {"none": 0, "read": 1, "write": 2, "admin": 3}
PUBLIC = "public"


@dataclass(frozen=True)
class Caller:
    """The identity a request carries."""

    user: str
    scope: Level
    groups: frozenset[str] | None = None  # ``None``: every document (admin, or QA_AUTH=none)
    collections: frozenset[str] | None = None  # ``None``: every collection
    origins: tuple[str, ...] = ()  # browser origins a key is restricted to (none: any)
    rate_per_minute: float = 0.0  # a key's own limit (0: only the per-address one)
    key: str = ""  # the key's name, for its own rate bucket
    identified: bool = True  # gave credentials (an anonymous caller did not)

    def may(self, need: Level) -> bool:
        """Whether the caller's scope covers ``need``."""
        return RANK[self.scope] >= RANK[need]

    def reads(self, collection: str) -> bool:
        """Whether the caller may use ``collection`` at all."""
        return self.scope != "none" and (self.collections is None or collection in self.collections)

    @property
    def sees_everything(self) -> bool:
        return self.groups is None


ADMIN = Caller("admin", "admin")
EVERYONE = Caller("anonymous", "read", identified=False)  # QA_AUTH=none: all public
NOBODY = Caller("anonymous", "none", frozenset(), frozenset(), identified=False)
PUBLIC_READER = Caller("anonymous", "read", frozenset({PUBLIC}), identified=False)
