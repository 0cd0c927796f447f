"""API keys: created, listed and revoked with ``qa keys``; kept hashed in one file under the
index root, written atomically, read again whenever it changes (a revoked key is refused at
once, by every server process).

A token is 32 random bytes (``qa_`` + URL-safe base64), so a single SHA-256 is enough to
store it: nothing can be guessed from the hash of a high-entropy secret (a slow password
hash is for low-entropy passwords). The token is printed once and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.access.caller import RANK, Caller, Level
from qa.errors import InvalidInput, NotFound

KEYS_FILE = ".qa-keys.json"  # in the index root; not a collection (no generation in it)
TOKEN_PREFIX = "qa_"
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)")
_PER_MINUTE = {"s": 60.0, "sec": 60.0, "second": 60.0, "m": 1.0, "min": 1.0, "minute": 1.0}
_PER_MINUTE |= {"h": 1 / 60, "hour": 1 / 60}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass
class Key:
    """A key as stored: its hash, never the token."""

    name: str
    hash: str
    scope: Level
    groups: list[str]
    collections: list[str] = field(default_factory=list)  # empty: every collection
    origins: list[str] = field(default_factory=list)
    rate: str = ""  # "60/min"; empty: only the per-address limit
    created: str = ""

    def caller(self) -> Caller:
        return Caller(
            user=self.name,
            scope=self.scope,
            groups=None if self.scope == "admin" else frozenset(self.groups),
            collections=frozenset(self.collections) if self.collections else None,
            origins=tuple(self.origins),
            rate_per_minute=parse_rate(self.rate) if self.rate else 0.0,
            key=self.name,
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_rate(text: str) -> float:
    """Requests per minute of ``60/min``, ``2/s``, ``1000/hour``."""
    match = _RATE.fullmatch(text.strip().lower())
    if not match:
        raise InvalidInput(f"rate {text!r}: give it as N/s, N/min or N/hour (e.g. 60/min)")
    return float(match.group(1)) * _PER_MINUTE[match.group(2)]


class KeyStore:
    """The keys file of an index root."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / KEYS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: list[Key] = []

    def all(self) -> list[Key]:
        """Every key, read again when the file changed since the last read."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            return []
        with self._lock:
            if stamp != self._stamp:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._keys = [Key(**k) for k in data.get("keys", [])]
                self._stamp = stamp
            return list(self._keys)

    def find(self, token: str) -> Key | None:
        """The key whose hash is the token's; every stored hash is compared (in constant
        time), so the time taken says nothing about which one, or how much of it, matched."""
        wanted = hash_token(token).encode()
        found = None
        for key in self.all():
            if hmac.compare_digest(wanted, key.hash.encode()):
                found = key
        return found

    def create(self, key: Key) -> str:
        """Store ``key`` (its hash set here) and return its token, which is shown only once."""
        if not _NAME.fullmatch(key.name):
            raise InvalidInput(
                f"key name {key.name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'"
            )
        if key.scope not in RANK or key.scope == "none":
            raise InvalidInput(f"scope {key.scope!r}: use read, write or admin")
        if key.rate:
            parse_rate(key.rate)
        keys = self.all()
        if any(k.name == key.name for k in keys):
            raise InvalidInput(f"a key named {key.name!r} exists; revoke it first")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key.hash = hash_token(token)
        key.created = key.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._write([*keys, key])
        return token

    def revoke(self, name: str) -> None:
        keys = self.all()
        if not any(k.name == name for k in keys):
            raise NotFound(f"no key named {name!r}", code="unknown_key")
        self._write([k for k in keys if k.name != name])

    def _write(self, keys: list[Key]) -> None:
        """Replace the file atomically (a reader sees the old list or the new, never half),
        readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"keys": [asdict(k) for k in keys]}, indent=1)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".qa-keys-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
