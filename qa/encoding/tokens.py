"""The model's tokenizer, in the two forms the encoder needs, each loaded once on first use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from qa.encoding.model import max_seq_length, offline_environment

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Span = tuple[int, int]


class Tokens:
    """Counts word pieces (no truncation) and gives token character offsets (truncated like
    the model, so they line up with its token embeddings)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, special tokens excluded."""
        if not texts:
            return []
        return self._counter(list(texts))

    def offsets(self, texts: Sequence[str]) -> list[list[Span]]:
        """Character span of each token the model sees, special tokens as ``(0, 0)``."""
        return [e.offsets for e in self._truncating.encode_batch(list(texts))]

    @cached_property
    def _counter(self) -> Callable[[list[str]], list[int]]:
        """Word pieces per text, from tokenizer.json when there is one (fast), else transformers."""
        offline_environment()
        file = self.path / "tokenizer.json"
        if file.exists():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(file))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            # without character offsets: faster (older tokenizers lack it)
            encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
            return lambda texts: [len(e.ids) for e in encode(texts, add_special_tokens=False)]
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(str(self.path))
        return lambda texts: [
            len(ids) for ids in auto(texts, add_special_tokens=False)["input_ids"]
        ]

    @cached_property
    def _truncating(self) -> Tokenizer:
        """The fast tokenizer, cut at the model's window like the model's own."""
        offline_environment()
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length(self.path))
        tokenizer.no_padding()
        return tokenizer
