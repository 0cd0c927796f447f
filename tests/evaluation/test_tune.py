"""``qa tune`` (cross-validated settings per collection, kept only when the gain beats the
noise) and ``qa index --gate`` (no switch to a generation that scores worse)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.encoding import Embedder
from qa.errors import StoreError
from qa.evaluation.labelled import Scored
from qa.evaluation.tune import cross_validate, false_abstention, tune_threshold
from qa.service import QAService
from qa.store import current_generation
from qa.store.tuning import TunedValues, Tuning, read_tuning, write_tuning
from tests.conftest import make_settings
from tests.helpers import CORPUS

LABELLED = Path(__file__).parents[2] / "scripts" / "data" / "songjiang_questions.jsonl"


@pytest.fixture
def cli(
    tmp_path: Path, seed_index_dir: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Run ``qa`` in-process over a private copy of the seed index (the session's model)."""
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    monkeypatch.setenv("QA_INDEX_DIR", str(index))
    monkeypatch.setenv("QA_RATE_LIMIT_PER_MINUTE", "0")
    for module in ("qa.cli.tune", "qa.cli.index", "qa.cli.collections"):
        monkeypatch.setattr(
            f"{module}.open_service", lambda s: QAService(s, embedder), raising=False
        )

    def run(*args: str, **env: str) -> Any:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return CliRunner().invoke(app, list(args))

    return index, run, embedder


def test_a_clear_gain_is_taken_and_noise_is_not() -> None:
    questions = list(range(40))
    better = {"default": [0.5] * 40, "better": [0.7] * 40}
    gain, noise, chosen = cross_validate(
        list(better), "default", lambda c, q: better[c][q], questions, 5
    )
    assert chosen == "better" and gain == pytest.approx(0.2) and gain > noise
    # a candidate that wins on half the questions and loses as much on the others
    mixed = {"default": [0.5] * 40, "mixed": [0.9 if q % 3 else 0.0 for q in range(40)]}
    gain, noise, _ = cross_validate(list(mixed), "default", lambda c, q: mixed[c][q], questions, 5)
    assert not (gain > 0 and gain > noise)


def test_threshold_needs_both_kinds_of_question_and_fits_them() -> None:
    answerable = [Scored(True, 1.0, 0.5 + 0.01 * i) for i in range(15)]
    without = [Scored(False, None, 0.3 + 0.01 * i) for i in range(15)]
    kept = tune_threshold(answerable, (0.2, 0.0), 5)
    assert kept.values == {} and "default kept" in kept.reason
    fitted = tune_threshold(answerable + without, (0.2, 0.0), 5)
    assert 0.44 < fitted.values["min_answer_score"] <= 0.5, fitted


def test_threshold_refuses_at_most_the_stated_share_of_answerable_questions() -> None:
    # overlapping scores: no threshold separates them, so the budget decides
    answerable = [Scored(True, 1.0, round(0.40 + 0.01 * i, 2)) for i in range(30)]
    without = [Scored(False, None, round(0.30 + 0.01 * i, 2)) for i in range(20)]
    scored = answerable + without
    everything = range(len(scored))
    for budget in (0.05, 0.1, 0.2):
        decision = tune_threshold(scored, (0.2, 0.0), 5, budget)
        chosen = decision.values["min_answer_score"]
        assert false_abstention(scored, everything, (chosen, 0.0)) <= budget, decision
        assert false_abstention(scored, everything, (chosen + 0.01, 0.0)) > budget  # the highest
        assert f"at most {budget:.0%}" in decision.reason
    assert tune_threshold(scored, (0.2, 0.0), 5, 0.1).values == {"min_answer_score": 0.43}


def test_a_default_that_refuses_too_many_answerable_questions_is_lowered() -> None:
    answerable = [Scored(True, 1.0, round(0.30 + 0.01 * i, 2)) for i in range(30)]
    without = [Scored(False, None, round(0.20 + 0.005 * i, 3)) for i in range(20)]
    decision = tune_threshold(answerable + without, (0.5, 0.0), 5, 0.05)
    assert decision.values == {"min_answer_score": 0.31}, decision
    assert "refuses more answerable questions than allowed" in decision.reason


def test_a_question_term_no_passage_holds_is_weighed_when_it_tells_them_apart() -> None:
    # the same answer scores, but the unanswerable questions ask for a rare word (idf 8)
    # that none of their passages holds; most answerable ones miss nothing or a common word
    answerable = [Scored(True, 1.0, round(0.40 + 0.01 * i, 2), missing=i % 3) for i in range(30)]
    without = [Scored(False, None, round(0.40 + 0.01 * i, 2), missing=8.0) for i in range(30)]
    decision = tune_threshold(answerable + without, (0.38, 0.0), 5, 0.05)
    assert decision.values["missing_term_weight"] > 0, decision
    assert "missing-term weight" in decision.reason and decision.gain > 0.5
    bar = (decision.values["min_answer_score"], decision.values["missing_term_weight"])
    everything = range(60)
    assert false_abstention(answerable + without, everything, bar) <= 0.05
    assert sum(not s.answered(*bar) for s in without) >= 27
    assert TunedValues(**decision.values).given() == decision.values  # storable as tuned
    assert TunedValues(min_answer_score=-1.2, missing_term_weight=0.2)  # a penalised scale


def test_tiny_set_keeps_defaults_and_stored_values_are_used(cli: Any) -> None:
    index, run, embedder = cli
    result = run("tune", "-c", "default", str(LABELLED), "--limit", "6")
    assert result.exit_code == 0, result.output
    assert "too few for 5 folds" in result.output and "| fusion_alpha" in result.output
    stored = read_tuning(index / "default")
    assert stored is not None and stored.values.given() == {}
    service = QAService(make_settings(index), embedder)
    question = "How many cities does the G60 corridor connect?"
    assert service.ask(question).answer is not None
    chosen = stored.model_copy(update={"values": TunedValues(min_answer_score=1.5)})
    write_tuning(index / "default", chosen)
    assert service.ask(question).answer is None  # read again when the file changes
    listed = run("collections")
    assert "tuned: min_answer_score=1.5" in listed.output, listed.output
    rows = json.loads(run("collections", "--json").output)
    assert rows[0]["tuned"] == {"min_answer_score": 1.5}
    assert run("tune", "-c", "default", str(LABELLED), "--reset").exit_code == 0
    assert service.ask(question).answer is not None


def test_gate_refuses_a_worse_generation_and_accepts_an_equal_one(cli: Any) -> None:
    index, run, _ = cli
    live = current_generation(index / "default")
    gate = ("index", str(CORPUS), "-c", "default", "--gate", str(LABELLED), "--max-drop", "0.02")
    # five long passages instead of nineteen: the labelled questions score worse
    refused = run(*gate, QA_MIN_PASSAGE_CHARS="1500")
    assert refused.exit_code == 1, refused.output
    assert "not switched" in refused.output and "would fall by 0.0" in refused.output
    assert current_generation(index / "default") == live
    assert sorted(p.name for p in (index / "default").glob("gen-*")) == [live]
    accepted = run(*gate, "--full", QA_MIN_PASSAGE_CHARS="40")
    assert accepted.exit_code == 0, accepted.output
    assert "(new): +0.0000 (allowed drop 0.0200)" in accepted.output, accepted.output
    assert current_generation(index / "default") != live


def test_tuning_file_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "tuning.json").write_text('{"values": {"fusion_alpha": 7}}')
    with pytest.raises(StoreError, match="fusion_alpha"):
        read_tuning(tmp_path)
    assert Tuning.model_fields["values"]
