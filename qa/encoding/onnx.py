"""Fast query encoding: the model's transformer exported to ONNX and run with onnxruntime.

The export is made locally from the configured model folder (no download), once per model,
and cached beside the indexes. Pooling and normalisation follow the model's own
sentence-transformers configuration, so vectors equal the torch ones (fp32: cosine 1.0;
the optional int8 variant trades a little accuracy for speed). Models with modules other
than Transformer/Pooling/Normalize are not exported; the torch path serves them.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.encoding.model import offline_environment
from qa.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime
    import torch

log = logging.getLogger(__name__)


def _pooling(model_dir: Path) -> str:
    """The model's pooling ("mean", "cls" or "max"); ModelError when ONNX can't reproduce it."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [m.get("type", "") for m in modules]
    unknown = [
        k for k in kinds if k.rsplit(".", 1)[-1] not in {"Transformer", "Pooling", "Normalize"}
    ]
    if unknown:
        raise ModelError(f"modules {unknown} have no ONNX path")
    pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    if pooling is None:
        return "mean"
    config = json.loads((model_dir / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    if config.get("pooling_mode") in {"mean", "cls", "max"}:
        return str(config["pooling_mode"])
    for mode in ("cls", "max", "mean"):
        if config.get(
            f"pooling_mode_{mode}_token" if mode == "cls" else f"pooling_mode_{mode}_tokens"
        ):
            return mode
    raise ModelError(f"pooling {config} has no ONNX path")


def export(model_dir: Path, target: Path, quantize: bool = False) -> Path:
    """Export the model's transformer to ``target`` (atomically); optionally int8 weights."""
    offline_environment()
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    accepts = set(inspect.signature(model.forward).parameters)
    names = ["input_ids", "attention_mask"]
    names += ["token_type_ids"] if "token_type_ids" in accepts else []

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    sample = tuple(torch.ones((1, 4), dtype=torch.long) for _ in names)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(f".tmp{os.getpid()}")
    axes = {name: {0: "batch", 1: "tokens"} for name in names + ["last_hidden_state"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant shapes checks
        torch.onnx.export(
            Wrapper(),
            sample,
            str(temporary),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = temporary.with_suffix(".q")
        quantize_dynamic(
            str(temporary), str(quantized), weight_type=QuantType.QInt8, per_channel=True
        )
        temporary.unlink()
        temporary = quantized
    os.replace(temporary, target)
    return target


class OnnxEncoder:
    """Encodes short texts with onnxruntime; thread-safe."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        fingerprint: str,
        max_seq_length: int,
        quantize: bool = False,
        threads: int | None = None,
    ) -> None:
        offline_environment()
        import onnxruntime  # noqa: F401 - fail here, before an export, when it is missing
        from tokenizers import Tokenizer

        self.pooling = _pooling(model_dir)
        tokenizer_file = model_dir / "tokenizer.json"
        if not tokenizer_file.exists():
            raise ModelError("no tokenizer.json (a fast tokenizer) in the model folder")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.enable_padding()
        name = "model-int8.onnx" if quantize else "model.onnx"
        path = cache_dir / fingerprint[:16] / name
        if not path.exists():
            log.info("exporting the query encoder to ONNX (once per model): %s", path)
            export(model_dir, path, quantize)
        try:
            self.session = _session(path, threads)
        except Exception:  # noqa: BLE001 - a damaged cache file: export again
            path.unlink(missing_ok=True)
            export(model_dir, path, quantize)
            self.session = _session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.path = path
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors for ``texts``."""
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {name: feed[name] for name in self.inputs})[0]
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        elif self.pooling == "max":
            vectors = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
        else:
            counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
            vectors = (hidden * mask[..., None]).sum(axis=1) / counts
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _session(path: Path, threads: int | None) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for the model in ``path``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    # don't busy-wait between runs: spinning threads steal the CPU from everything else
    # on a small shared machine (measured: question encoding 52 -> 18 ms under load)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
