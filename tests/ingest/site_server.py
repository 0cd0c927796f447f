"""A small documentation site served by the standard library's HTTP server in a thread, for
the crawler's tests: every page has navigation, a sidebar, a cookie banner and a footer
around its main text, and the site has the awkward cases a crawler meets (robots.txt,
redirects in and out of scope, a loop, 404/410/500, a page over the size limit, a binary
file named .html, a slow page, two URLs of one page, a PDF). Pages can be changed and
removed while it runs; every request's headers are recorded."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.ingest.pdf_fixtures import text_pdf

# Words that appear only in page furniture: none may reach a passage.
FURNITURE_WORDS = ("Zanzibar", "quokka", "marmalade", "cookies")

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Example Docs</title>{head}</head>
<body>
<div id="cookie-banner" class="cookie-consent">This site uses cookies. Accept all cookies?
<button>Accept</button></div>
<header><nav class="navbar"><a href="/docs/">Home</a> | <a href="/docs/install.html">Install</a>
| <a href="/docs/config.html">Configure</a> | Zanzibar navigation menu</nav></header>
<aside class="sidebar"><h3>On this page</h3><ul><li><a href="#top">A quokka sidebar link</a>
</li><li><a href="/docs/config.html">Another quokka entry</a></li></ul></aside>
<main><article>
<h1>{title}</h1>
{body}
</article></main>
<footer class="site-footer"><p>Copyright 2026 Example Corp. The marmalade footer text.</p>
<a href="/docs/">Home</a></footer>
</body></html>
"""


def page(title: str, *paragraphs: str, head: str = "", links: str = "") -> bytes:
    """An HTML page of the site: ``paragraphs`` (an ``h2:`` prefix makes a heading)."""
    body = []
    for text in paragraphs:
        if text.startswith("h2:"):
            body.append(f"<h2>{text[3:]}</h2>")
        else:
            body.append(f"<p>{text}</p>")
    html = TEMPLATE.format(title=title, head=head, body="\n".join(body) + links)
    return html.encode("utf-8")


@dataclass
class Route:
    """What the server answers for one path."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line (a slow page)
    length: bool = True  # send Content-Length (False: the body is streamed until closed)


@dataclass
class Site:
    """The routes, and every request received (path and headers)."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths_requested(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]

    def headers_of(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers in self.requests if p == path]


def _handler(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet tests
            pass

        def do_GET(self) -> None:
            with site.lock:
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?")[0])
            route = route or Route(404, b"<html><body>not found</body></html>")
            if route.delay_s:
                time.sleep(route.delay_s)
            etag, modified = route.headers.get("ETag"), route.headers.get("Last-Modified")
            if (etag and self.headers.get("If-None-Match") == etag) or (
                modified and self.headers.get("If-Modified-Since") == modified
            ):
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            for key, value in route.headers.items():
                self.send_header(key, value)
            if route.length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the crawler may hang up (size limit)
                self.wfile.write(route.body)

    return Handler


@contextlib.contextmanager
def serving(site: Site) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1; yields the base URL (no slash)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


INSTALL = (
    (
        "Run the installer with the prefix flag to choose where the tool is installed. "
        "The installer checks the Python version and refuses anything older than 3.11."
    ),
    "h2:Upgrading",
    (
        "To upgrade, run the installer again over the old folder: settings and caches are "
        "kept, and the previous version is moved aside until the new one has started once."
    ),
)
CONFIG_V1 = (
    (
        "The configuration file lives in the settings folder and is read at start-up. "
        "Each key may also be given as an environment variable with the EXAMPLE prefix."
    ),
    "h2:Logging",
    (
        "Logging is written to standard error by default; set the log level to debug to see "
        "every request the tool makes and how long each one took."
    ),
)
CONFIG_V2 = (
    (
        "The configuration file lives in the settings folder and is read again whenever it "
        "changes, so a running service picks up new values without a restart."
    ),
    "h2:Logging",
    (
        "Logging is written to standard error by default; set the log level to debug to see "
        "every request the tool makes and how long each one took."
    ),
)
OLD = (
    (
        "The legacy command line was removed in version four; its flags map onto the new "
        "subcommands one to one, as the migration table of the release notes shows."
    ),
)
RENAMED = (
    (
        "The renamed page explains backups: copy the data folder while the service is stopped, "
        "or use the snapshot command, which writes a consistent copy while it keeps running."
    ),
)
HOME_LINKS = """<ul>
<li><a href="install.html">Install</a></li><li><a href="config.html">Configure</a></li>
<li><a href="old.html">Old command line</a></li><li><a href="moved.html">Backups</a></li>
<li><a href="away.html">Elsewhere</a></li><li><a href="loop-a.html">Loop</a></li>
<li><a href="missing.html">Missing</a></li><li><a href="removed.html">Removed</a></li>
<li><a href="broken.html">Broken</a></li><li><a href="big.html">Big</a></li>
<li><a href="binary.html">Binary</a></li><li><a href="slow.html">Slow</a></li>
<li><a href="copy.html">Copy</a></li><li><a href="private/secret.html">Secret</a></li>
<li><a href="manual.pdf">Manual</a></li><li><a href="logo.png">Logo</a></li>
<li><a href="/outside.html">Outside</a></li>
<li><a href="install.html?utm_source=newsletter&amp;utm_medium=email#upgrading">Tracked</a></li>
</ul>"""
HOME = (
    (
        "Example Docs describe how to install, configure and run the example tool on a server "
        "of your own, and how to keep it current when new versions come out."
    ),
)
PDF_LINES = ["The operator manual covers disaster recovery drills.", "Run one every quarter."]


def docs_site() -> Site:
    """The fixture site under ``/docs/`` (no sitemap), and a sitemap-listed one under ``/sm/``."""
    html = "text/html; charset=utf-8"
    r = {
        "/robots.txt": Route(
            body=b"User-agent: *\nDisallow: /docs/private/\n", content_type="text/plain"
        ),
        "/docs/": Route(body=page("Example Docs", *HOME, links=HOME_LINKS)),
        "/docs/install.html": Route(body=page("Installing", *INSTALL), headers={"ETag": '"v1"'}),
        "/docs/config.html": Route(
            body=page("Configuring", *CONFIG_V1),
            headers={"Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"},
        ),
        "/docs/old.html": Route(body=page("Old command line", *OLD)),
        "/docs/moved.html": Route(301, headers={"Location": "/docs/renamed.html"}),
        "/docs/renamed.html": Route(body=page("Backups", *RENAMED)),
        "/docs/away.html": Route(302, headers={"Location": "https://example.org/away"}),
        "/docs/loop-a.html": Route(302, headers={"Location": "/docs/loop-b.html"}),
        "/docs/loop-b.html": Route(302, headers={"Location": "/docs/loop-a.html"}),
        "/docs/removed.html": Route(410, b"gone"),
        "/docs/broken.html": Route(500, b"internal error"),
        "/docs/big.html": Route(body=page("Big", "A long page. " * 20_000), length=False),
        "/docs/binary.html": Route(body=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)),
        "/docs/slow.html": Route(body=page("Slow", *RENAMED), delay_s=3.0),
        "/docs/copy.html": Route(
            body=page(
                "Installing", *INSTALL, head='<link rel="canonical" href="/docs/install.html">'
            )
        ),
        "/docs/private/secret.html": Route(body=page("Secret", *OLD)),
        "/docs/manual.pdf": Route(body=text_pdf([PDF_LINES]), content_type="application/pdf"),
        "/docs/logo.png": Route(body=b"\x89PNG\r\n\x1a\n" + bytes(64), content_type="image/png"),
        "/outside.html": Route(body=page("Outside", *OLD), content_type=html),
        # a site with a sitemap index: only the pages it lists are crawled
        "/sm/": Route(body=page("Listed", *HOME, links='<a href="hidden.html">Hidden</a>')),
        "/sm/sitemap.xml": Route(body=SITEMAP_INDEX, content_type="application/xml"),
        "/sm/pages.xml": Route(body=SITEMAP, content_type="application/xml"),
        "/sm/a.html": Route(body=page("Installing", *INSTALL)),
        "/sm/b.html": Route(body=page("Configuring", *CONFIG_V1)),
        "/sm/hidden.html": Route(body=page("Backups", *RENAMED)),
    }
    return Site(r)


SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>/sm/pages.xml</loc></sitemap>
</sitemapindex>"""
SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>/sm/a.html</loc></url><url><loc>/sm/b.html#part</loc></url>
<url><loc>https://example.org/sm/c.html</loc></url>
</urlset>"""
