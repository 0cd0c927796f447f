"""Fast encoding: the model's transformer exported to ONNX and run with onnxruntime (questions,
and passages when ``QA_PASSAGE_BACKEND`` asks for it).

The export is made locally from the configured model folder (no download), once per model,
and cached beside the indexes. Pooling and normalisation follow the model's own
sentence-transformers configuration, so vectors equal the torch ones (fp32: cosine 1.0;
the optional int8 variant trades a little accuracy for speed). Models with modules other
than Transformer/Pooling/Normalize are not exported; the torch path serves them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import platform
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.encoding.model import offline_environment
from qa.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime
    import torch

log = logging.getLogger(__name__)

# Questions and document sentences of many lengths and kinds: ``auto`` uses the int8 encoder
# only if its vectors of these agree with float32's on this machine (int8 kernels differ
# between CPUs; see README, "How it answers")
PROBES = (
    "How many cities does the G60 corridor connect?",
    "Haier",
    "Are Python strings mutable?",
    "how do i get the output of a shell command into a variable",
    "What does the district offer to young researchers who rent a flat?",
    "Can time.sleep take fractions of a second?",
    (
        "The district offers talents subsidies ranging from around 670 yuan to 4,500 yuan per month "
        "to ensure that the rental expense is around 10 percent of their salary."
    ),
    "subprocess.run(args, *, stdin=None, input=None, capture_output=False, timeout=None)",
    (
        "Vitamin D deficiency was associated with a 1.5-fold higher risk of cardiovascular events "
        "in the cohort (95% CI 1.2 to 1.9)."
    ),
    "Note that simply calling a coroutine will not schedule it to be executed.",
    "Last updated on Nov 27, 2026.",
    (
        "A class that overrides __eq__() and does not define __hash__() will have its __hash__() "
        "implicitly set to None, and its instances will raise TypeError when hashed."
    ),
)
INT8_AGREEMENT = 0.99  # the least mean cosine with float32 for ``auto`` to use int8


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


def export(model_dir: Path, target: Path) -> Path:
    """Export the model's transformer to ``target`` (atomically)."""
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
    os.replace(temporary, target)
    return target


def quantize(source: Path, target: Path) -> Path:
    """The int8 variant (dynamic, per-channel weights) of the float32 export ``source``,
    written to ``target`` atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    temporary = target.with_suffix(f".tmp{os.getpid()}")
    logging.disable(logging.WARNING)  # the quantizer logs every tensor it leaves alone
    try:
        quantize_dynamic(str(source), str(temporary), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.disable(logging.NOTSET)
    os.replace(temporary, target)
    return target


class OnnxEncoder:
    """Encodes texts with onnxruntime; thread-safe."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        fingerprint: str,
        max_seq_length: int,
        int8: bool = False,
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
        exact = cache_dir / fingerprint[:16] / "model.onnx"
        path = exact.with_name("model-int8.onnx") if int8 else exact
        try:
            self.session = _session(_made(model_dir, exact, path), threads)
        except Exception:  # noqa: BLE001 - a damaged cache file: export again
            exact.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            self.session = _session(_made(model_dir, exact, path), threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.path = path
        self.int8 = int8
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors for ``texts``."""
        hidden, mask, _ = self.hidden(texts)
        return _normalised(self.pool(hidden, mask))

    def encode_apart(self, texts: list[str], pool: Executor) -> np.ndarray:
        """:meth:`encode`, each text in a run of its own, the runs side by side on ``pool``'s
        threads: no padding, and with int8 (one activation scale per run) a text's vector
        never depends on the texts encoded with it. ``texts`` must not be empty."""
        return np.vstack(list(pool.map(lambda text: self.encode([text]), texts)))

    def hidden(
        self, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, int]]]]:
        """The model's token embeddings of ``texts`` (one padded batch), the attention mask,
        and each text's token character offsets (special tokens ``(0, 0)``)."""
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {name: feed[name] for name in self.inputs})[0]
        return hidden, mask, [e.offsets for e in encodings]

    def pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One vector per text from its token embeddings, by the model's pooling (not
        normalised)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "max":
            return np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (hidden * mask[..., None]).sum(axis=1) / counts


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def int8_agreement(exact: OnnxEncoder, fast: OnnxEncoder) -> float:
    """Mean cosine between ``fast``'s and ``exact``'s vectors of :data:`PROBES`."""
    texts = list(PROBES)
    return float(np.mean(np.sum(exact.encode(texts) * fast.encode(texts), axis=1)))


def encoders(
    model_dir: Path, cache_dir: Path, fingerprint: str, max_seq_length: int, threads: int | None
) -> Callable[..., OnnxEncoder]:
    """``encoders(int8)``: the model's float32 or int8 :class:`OnnxEncoder`, each made once;
    ``encoders(int8, 1)``: one running on a single thread (for batches run side by side)."""

    @functools.cache
    def encoder(int8: bool, session_threads: int | None = threads) -> OnnxEncoder:
        return OnnxEncoder(
            model_dir, cache_dir, fingerprint, max_seq_length, int8=int8, threads=session_threads
        )

    return encoder


def int8_agrees(encoder: Callable[[bool], OnnxEncoder], what: str) -> bool:
    """Whether the int8 export (``encoder(True)``) agrees with float32 (``encoder(False)``)
    on this machine, from the record or measured now; logs when it does not."""
    agreement = recorded_agreement(
        encoder(True), lambda: int8_agreement(encoder(False), encoder(True))
    )
    if agreement < INT8_AGREEMENT:
        log.info(
            "int8 %s encoder agrees with float32 at %.4f (< %s) on this CPU: not using it",
            what,
            agreement,
            INT8_AGREEMENT,
        )
    return agreement >= INT8_AGREEMENT


def recorded_agreement(fast: OnnxEncoder, measure: Callable[[], float]) -> float:
    """The int8 agreement measured on this machine (CPU and onnxruntime), from the record
    beside the int8 export, or measured now and recorded (atomically)."""
    import onnxruntime

    record = fast.path.with_name("int8-check.json")
    machine = f"{_cpu()} onnxruntime {onnxruntime.__version__}"
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if known.get("machine") == machine:
            return float(known["agreement"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    agreement = measure()
    temporary = record.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"machine": machine, "agreement": agreement}), "utf-8")
    os.replace(temporary, record)
    return agreement


def _cpu() -> str:
    """The CPU model and its vector instruction sets (what int8 kernels depend on)."""
    model, flags = platform.processor(), ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not flags:
                model = value.strip()
            elif key.strip() in {"flags", "Features"}:
                flags = " ".join(
                    sorted(f for f in value.split() if f.startswith(("avx", "amx", "asimd", "sve")))
                )
                break
    return f"{platform.machine()} {model} {flags}".strip()


def _made(model_dir: Path, exact: Path, path: Path) -> Path:
    """``path`` (the float32 export ``exact``, or its int8 variant), made if missing."""
    if not exact.exists():
        log.info("exporting the query encoder to ONNX (once per model): %s", exact)
        export(model_dir, exact)
    if not path.exists():
        log.info("quantizing the query encoder to int8 (once per model): %s", path)
        quantize(exact, path)
    return path


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
