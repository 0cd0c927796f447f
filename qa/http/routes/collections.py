"""Collections: the list, and one collection's counts, model and build time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter, Request

from qa.http.deps import ServiceDep, SettingsDep, caller_of, groups_of, load, valid_name
from qa.http.schemas import ERRORS, CollectionInfo, CollectionList, ModelInfo
from qa.service import QAService
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
def collections(request: Request, service: ServiceDep, settings: SettingsDep) -> CollectionList:
    """Every indexed collection (that the caller may use) with its counts, model and build
    time; the counts are those of the documents the caller may see."""
    caller = caller_of(request)
    # read from the manifests: listing never loads (or checksums) an index, unless the
    # caller sees only some documents (its counts are then those of the ones it sees)
    out = [
        _counted(info(name, manifest), service, caller.groups)
        for name, manifest in service.manifests().items()
        if caller.reads(name)
    ]
    return CollectionList(collections=out, default=settings.collection)


@router.get("/v1/collections/{name}", response_model=CollectionInfo, responses=ERRORS)
def collection_info(request: Request, service: ServiceDep, name: str) -> CollectionInfo:
    """One collection's counts, model and build time."""
    loaded = load(request, valid_name(name))
    return _counted(info(loaded, service.manifest(loaded)), service, groups_of(request))


def _counted(
    about: CollectionInfo, service: QAService, groups: frozenset[str] | None
) -> CollectionInfo:
    """``about`` with the counts of what a reader in ``groups`` may see."""
    if groups is None:
        return about
    collection = service.collection(about.name)
    rows = collection.visible(groups) & collection.live
    documents = np.unique(collection.meta.document_of_row[rows])
    titles = {collection.meta.documents[d].id for d in documents.tolist()}
    return about.model_copy(update={"documents": len(titles), "passages": int(rows.sum())})
