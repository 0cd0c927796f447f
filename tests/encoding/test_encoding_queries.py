"""The question encoder's parts without the model: the sentence cache and the micro-batcher."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from qa.encoding import ModelIdentity
from qa.encoding.batcher import MicroBatcher
from qa.encoding.queries import QueryEncoder


def lengths(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: each text's vector is its length."""
    return np.asarray([[float(len(t))] for t in texts], dtype=np.float32)


def test_sentences_are_cached_least_recently_used_first_out() -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return lengths(texts)

    identity = ModelIdentity("fake", ".", "0" * 64, dimension=1, max_seq_length=8)
    encoder = QueryEncoder(lambda: identity, encode, backend="torch", cache_size=2)
    assert encoder.encode_sentences(["a", "bb", "a"]).tolist() == [[1.0], [2.0], [1.0]]
    assert calls == [["a", "bb"]]  # each text once
    assert encoder.encode_sentences(["bb"]).tolist() == [[2.0]] and len(calls) == 1
    encoder.encode_sentences(["ccc"])  # "a" is now the least recently used: dropped
    encoder.encode_sentences(["bb", "a"])
    assert calls[1:] == [["ccc"], ["a"]]
    encoder.encode_queries(["bb"])  # questions are not cached
    assert calls[-1] == ["bb"] and encoder.active_backend == "torch"


def test_an_encoding_error_reaches_every_caller_of_the_batch() -> None:
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def encode(texts: list[str]) -> np.ndarray:
        if texts == ["first"]:
            started.set()
            release.wait(30)
            return lengths(texts)
        raise ValueError(f"cannot encode {texts}")

    batcher = MicroBatcher(encode)

    def caller(text: str) -> None:
        try:
            batcher.submit([text])
        except ValueError as exc:
            errors.append(exc)

    first = threading.Thread(target=caller, args=("first",))
    first.start()
    assert started.wait(30)
    others = [threading.Thread(target=caller, args=(text,)) for text in ("x", "y")]
    for thread in others:
        thread.start()
    while len(batcher._pending) < 2:  # both wait behind the first batch
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(30)
    assert len(errors) == 2 and errors[0] is errors[1]  # one failed batch of both texts
    with pytest.raises(ValueError, match="cannot encode"):
        batcher.submit(["again"])
    assert batcher.submit(["first"]).tolist() == [[5.0]]  # and it still works
