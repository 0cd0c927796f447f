"""Collections: the list, and one collection's counts, model and build time."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request

from qa.http.deps import ServiceDep, SettingsDep, load, valid_name
from qa.http.schemas import ERRORS, CollectionInfo, CollectionList, ModelInfo
from qa.store import Manifest

router = APIRouter(tags=["collections"])


def public_root(source: str) -> str:
    """A collection's source as readers may see it: a folder's name, never its server path."""
    return Path(source).name if source.startswith("/") else source


def info(name: str, manifest: Manifest) -> CollectionInfo:
    return CollectionInfo(
        name=name,
        documents=manifest.counts.documents,
        passages=manifest.counts.passages,
        generation=manifest.generation,
        created_at=manifest.created_at,
        model=ModelInfo.model_validate(manifest.model, from_attributes=True),
        sources=[public_root(s) for s in manifest.sources],
    )


@router.get("/v1/collections", response_model=CollectionList)
def collections(service: ServiceDep, settings: SettingsDep) -> CollectionList:
    """Every indexed collection with its counts, model and build time."""
    # read from the manifests: listing never loads (or checksums) an index
    out = [info(name, manifest) for name, manifest in service.manifests().items()]
    return CollectionList(collections=out, default=settings.collection)


@router.get("/v1/collections/{name}", response_model=CollectionInfo, responses=ERRORS)
def collection_info(request: Request, service: ServiceDep, name: str) -> CollectionInfo:
    """One collection's counts, model and build time."""
    loaded = load(request, valid_name(name))
    return info(loaded, service.manifest(loaded))
