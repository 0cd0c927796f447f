"""Grouping questions for ``qa report``: paraphrases together, other questions apart."""

from __future__ import annotations

import json

import numpy as np

from qa.encoding import Embedder
from qa.feedback import GroupParams, cluster
from tests.helpers import FIXTURES_DIR

PARAPHRASES = FIXTURES_DIR / "paraphrases.jsonl"


def test_paraphrases_share_a_group_and_unrelated_questions_do_not(embedder: Embedder) -> None:
    rows = [json.loads(line) for line in PARAPHRASES.read_text().splitlines()]
    labels = [row["group"] for row in rows]
    vectors = np.asarray(embedder.encode_queries([row["question"] for row in rows]))
    groups = [[labels[i] for i in members] for members in cluster(vectors, GroupParams().threshold)]
    assert sorted(i for members in cluster(vectors, 0.7) for i in members) == list(range(len(rows)))
    for label in ("cities", "brand", "opening", "weather"):
        holding = [g for g in groups if label in g]
        assert len(holding) == 1 and holding[0].count(label) == labels.count(label), (label, groups)
    for members in groups:
        # different questions may meet only when they ask about the same thing (G60's age)
        assert len(set(members) - {"g60-age"}) == 1, groups
    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
    assert ["haier-founder"] in groups  # not merged with the Haier-brand questions
    assert groups[0][0] == "cities"  # the centre (the example shown) is a real member


def test_grouping_edge_cases() -> None:
    assert cluster(np.zeros((0, 4), dtype=np.float32), 0.7) == []
    same = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (3, 1))
    assert cluster(same, 0.7) == [[0, 1, 2]]
    apart = np.eye(3, dtype=np.float32)
    assert sorted(cluster(apart, 0.7)) == [[0], [1], [2]]
