"""One router per area of the API, in the order their routes are matched and documented."""

from __future__ import annotations

from qa.http.routes import collections, openai, operations, questions, sources, web, writes

ROUTERS = [
    questions.router,
    openai.router,
    collections.router,
    sources.router,
    web.router,
    writes.router,
    operations.router,
]

__all__ = ["ROUTERS"]
