"""``qa serve --engine ray --replicas N``: the API as a Ray Serve deployment.

Every replica is the ordinary app over its own :class:`~qa.service.QAService`, opening the
same collection folder (shared storage on a cluster). Each request looks at the folder's
live generation as one server does, so a write through any replica, or a ``qa index`` run
anywhere, switches every replica at its next request. Replicas don't merge segments in the
background (several would race to merge the same segments): run ``qa optimize`` instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI

from qa.config import Settings
from qa.errors import MissingExtra
from qa.store.ray_engine import require_ray, start_ray

APP_NAME = "qa"


class QAReplica:
    """One replica: a service with its model warm and its collection loaded."""

    def __init__(self, values: dict[str, Any]) -> None:
        from qa.service import QAService

        self.settings = Settings(**values)
        self.service = QAService(self.settings)
        if self.settings.collection == "default":
            self.service.ensure_default()
        self.service.collection()
        self.service.embedder.warm_up()

    def __serve_build_asgi_app__(self) -> FastAPI:
        from qa.http.app import create_app

        return create_app(self.settings, self.service)

    def generation(self) -> tuple[int, str]:
        """This replica's process id and the generation it now serves (tests, operators)."""
        return os.getpid(), self.service.collection().generation


def deploy(settings: Settings, replicas: int, actor_cpus: float = 1.0) -> Any:
    """Start ``replicas`` replicas behind Ray Serve's HTTP proxy on ``settings.host:port``;
    the deployment's handle."""
    ray = start_ray()
    try:
        from ray import serve
    except ImportError:
        raise MissingExtra(
            "qa serve --engine ray needs Ray Serve: pip install -e '.[ray]'"
        ) from None
    del ray
    serve.start(http_options={"host": settings.host, "port": settings.port})
    replica = serve.deployment(
        serve.ingress()(QAReplica),
        name="qa",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": actor_cpus},
    )
    values = settings.model_dump(mode="json", exclude_unset=False)
    return serve.run(replica.bind(values), name=APP_NAME, route_prefix="/")


def run(settings: Settings, replicas: int) -> None:
    """Serve with Ray until interrupted."""
    require_ray()
    deploy(settings, replicas)
    print(
        f"qa is serving collection {settings.collection!r} on Ray Serve with {replicas} replicas\n"
        f"  open http://{settings.host}:{settings.port}/ · Ctrl+C stops",
        flush=True,
    )
    from ray import serve

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
