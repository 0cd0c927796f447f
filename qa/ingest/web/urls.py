"""URLs of a crawl: one canonical spelling per page, and the scope a crawl stays in."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that say where a reader came from, not which page they read: dropped, so
# a page linked with and without them is one document.
TRACKING = frozenset(["gclid", "fbclid", "msclkid", "mc_cid", "mc_eid", "_ga", "_gl", "yclid"])
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_url(text: str) -> bool:
    """Whether a source given to ``qa index`` is a web address rather than a path."""
    return text.lower().startswith(("http://", "https://"))


def canonical(url: str, base: str | None = None) -> str | None:
    """``url`` (relative to ``base``) with its fragment and tracking parameters dropped,
    scheme and host in lower case and the default port left out; ``None`` when it is not an
    http(s) address."""
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in TRACKING
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


@dataclass(frozen=True)
class Scope:
    """The pages a crawl may visit: the start page's host, at or below its folder."""

    origin: str  # scheme://host[:port]
    prefix: str  # path every page's path starts with

    @classmethod
    def of(cls, start: str) -> Scope:
        """The scope of a crawl starting at ``start`` (already canonical): below
        ``/guide/`` for ``/guide/`` and ``/guide/index.html``, below ``/guide`` + ``/`` for a
        folder named without its slash."""
        parts = urlsplit(start)
        path = parts.path or "/"
        if not path.endswith("/"):
            last = path.rsplit("/", 1)[-1]
            path = path.rsplit("/", 1)[0] + "/" if "." in last else path + "/"
        return cls(f"{parts.scheme}://{parts.netloc}", path)

    def __contains__(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            return False
        path = parts.path or "/"
        return path.startswith(self.prefix) or path + "/" == self.prefix

    def describe(self) -> str:
        """The scope as a reader would say it (``http://host/guide/``)."""
        return self.origin + self.prefix
