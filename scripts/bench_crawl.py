"""Crawl a real documentation site served locally: Debian's python3.11-doc
(``/usr/share/doc/python3.11/html``, ~500 pages) behind the standard library's HTTP server.

Prints the crawl alone (fetch + main-content extraction: pages/s, outcomes, pages whose
text still holds the site's navigation, sidebar or footer), and with ``--index`` the whole
``qa index URL`` path into a temporary collection (passages, seconds, furniture in any
passage) and a re-sync (conditional requests: the server answers 304; nothing embedded).

    python scripts/bench_crawl.py [--limit 100] [--index] [--json]
"""

from __future__ import annotations

import functools
import http.server
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import make_parser, say

from qa.config import Settings
from qa.ingest.web import CrawlParams, FetchParams, crawl

DOCS = Path("/usr/share/doc/python3.11/html")
# Text of the Sphinx theme's navigation, sidebar and footer: none should reach a passage.
FURNITURE = (
    "Table of Contents",
    "Previous topic",
    "Next topic",
    "This Page",
    "Report a Bug",
    "Show Source",
    "Quick search",
    "Python Software Foundation",
    "Please donate",
    "Last updated on",
    "Found a bug?",
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on a free local port (answers If-Modified-Since with 304)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def with_furniture(texts: list[str]) -> int:
    return sum(any(marker in text for marker in FURNITURE) for text in texts)


def crawl_only(root: str, limit: int) -> dict[str, object]:
    """Fetch and extract every page once (no embedding)."""
    params = CrawlParams(max_pages=limit, max_depth=20, fetch=FetchParams(delay_s=0.0))
    started = time.perf_counter()
    result = crawl(root, params)
    seconds = time.perf_counter() - started
    documents = [p.document for p in result.pages if p.document is not None]
    return {
        "pages_visited": len(result.pages),
        "documents": len(documents),
        "outcomes": dict(Counter(p.result for p in result.pages)),
        "seconds": round(seconds, 1),
        "pages_per_s": round(len(result.pages) / seconds, 2),
        "documents_with_furniture": with_furniture([d.text[d.body_start :] for d in documents]),
        "truncated": result.truncated,
    }


def index_site(root: str, limit: int) -> dict[str, object]:
    """``qa index URL`` into a temporary collection, then a re-sync of it."""
    from qa.service import QAService

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            index_dir=Path(folder), crawl_max_pages=limit, crawl_max_depth=20, crawl_delay_s=0
        )
        service = QAService(settings)
        started = time.perf_counter()
        first = service.sync_site(root, "pydocs")
        first_s = time.perf_counter() - started
        collection = service.collection("pydocs")
        passages = collection.passages_of(collection.document_hashes())
        started = time.perf_counter()
        again = service.sync_site(None, "pydocs")
        again_s = time.perf_counter() - started
        return {
            "documents": first.documents,
            "passages": first.passages,
            "index_seconds": round(first_s, 1),
            "index_pages_per_s": round(first.documents / first_s, 2),
            "passages_with_furniture": with_furniture([p.text for p in passages]),
            "resync_seconds": round(again_s, 1),
            "resync_embedded": again.embedded,
            "resync_unchanged": again.unchanged,
        }


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--limit", type=int, default=1000, help="pages at most")
    parser.add_argument("--index", action="store_true", help="also embed and re-sync")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not DOCS.is_dir():
        raise SystemExit(f"{DOCS} is missing: apt-get install python3.11-doc")
    figures: dict[str, object] = {}
    with serving(DOCS) as root:
        say(f"crawling {root} (at most {args.limit} pages)")
        figures["crawl"] = crawl_only(root, args.limit)
        say(json.dumps(figures["crawl"]))
        if args.index:
            figures["index"] = index_site(root, args.limit)
            say(json.dumps(figures["index"]))
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
