"""The HTTP API over :class:`qa.service.QAService`: the app (routes, middleware, one error
shape) and ``qa serve``, which runs it under uvicorn."""

from __future__ import annotations

from qa.http.app import create_app
from qa.http.server import run

__all__ = ["create_app", "run"]
