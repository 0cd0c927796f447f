"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from qa.errors import StoreError, UnknownCollection
from qa.http.deps import ServiceDep, metrics_of, require_admin
from qa.http.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(service: ServiceDep) -> Health | JSONResponse:
    """The default collection is loaded and the model is warm."""
    try:
        collection = service.collection()
    except (StoreError, UnknownCollection) as exc:
        reason = {"reason": str(exc)}
        return JSONResponse({"status": "unavailable", "detail": reason}, status_code=503)
    if not service.is_warm:
        return JSONResponse({"status": "warming", "detail": {}}, status_code=503)
    detail = {"collection": collection.name, "generation": collection.generation}
    detail["query_encoder"] = service.embedder.active_query_backend
    return Health(status="ready", detail=detail)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_admin)],
)
def prometheus(request: Request, service: ServiceDep) -> Response:
    """Prometheus metrics: requests and latency by route and status, collection sizes (admin key)."""
    metrics = metrics_of(request)
    for name, manifest in service.manifests().items():
        metrics.collection_size(name, manifest.counts.documents, manifest.counts.passages)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
