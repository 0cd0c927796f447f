"""One router per area of the API, in the order their routes are matched and documented."""

from __future__ import annotations

from qa.http.routes import (
    collections,
    feedback,
    openai,
    operations,
    pages,
    questions,
    sources,
    status,
    web,
    writes,
)

ROUTERS = [
    questions.router,
    openai.router,
    collections.router,
    sources.router,
    status.router,
    feedback.router,
    web.router,
    pages.router,
    writes.router,
    operations.router,
]

__all__ = ["ROUTERS"]
