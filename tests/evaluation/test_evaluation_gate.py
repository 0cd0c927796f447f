"""The gate against a baseline report, report files (also those written before the typed
reports), and the ``qa eval`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from qa.cli.eval import eval_command
from qa.evaluation import (
    HEADLINE,
    BaselineError,
    Report,
    bundle,
    compare,
    evaluate,
    load_baseline,
    load_dataset,
)
from qa.evaluation.gate import Headline, HeadlineConfig, unbundle
from qa.evaluation.report import Runs
from tests.evaluation.test_evaluation import ARTICLE_QUESTIONS, write_lines
from tests.evaluation.test_evaluation_datasets import tiny_beir
from tests.helpers import FIXTURES_DIR, ROOT, SEED_FILE

FIXTURES = FIXTURES_DIR
# written by `qa eval scripts/data/songjiang_questions.jsonl --out ...` before the reports were
# typed (one retriever, hybrid), and the same with `-r dense -r hybrid`
REPORT_V1 = FIXTURES / "report-v1.json"
REPORT_V1_RUNS = FIXTURES / "report-v1-runs.json"


def _headline(retriever: str, **metrics: float) -> Headline:
    values: dict[str, float | None] = {key: 0.5 for key in HEADLINE}
    values.update({k.replace("_at_", "@"): v for k, v in metrics.items()})
    return Headline(
        dataset="d", split="test", config=HeadlineConfig(retriever=retriever), metrics=values
    )


def test_compare_flags_only_drops_beyond_the_tolerance() -> None:
    baseline = [_headline("dense", ndcg_at_10=0.65, recall_at_100=0.93), _headline("bm25")]
    current = [_headline("dense", ndcg_at_10=0.645, recall_at_100=0.90), _headline("hybrid")]
    regressions, notes = compare(baseline, current, 0.01)
    assert [(r.retriever, r.metric, round(r.drop, 4)) for r in regressions] == [
        ("dense", "recall@100", 0.03)
    ]
    assert "dense: recall@100 fell by 0.0300 (0.9300 -> 0.9000)" == str(regressions[0])
    assert notes == ["hybrid: not in the baseline (baseline has dense, bm25)"]
    assert compare(baseline, current, 0.05)[0] == []
    with pytest.raises(BaselineError, match="no run for any retriever"):
        compare([_headline("bm25")], [_headline("dense")], 0.01)


def test_report_files_round_trip() -> None:
    one = Report.model_validate_json(REPORT_V1.read_text(encoding="utf-8"))
    two = one.model_copy(update={"config": one.config.model_copy(update={"retriever": "bm25"})})
    assert bundle([one]) is one and bundle([one, two]) == Runs(runs=[one, two])
    as_read = unbundle(bundle([one, two]).model_dump(mode="json"))
    assert [(h.config.retriever, h.metrics) for h in as_read] == [
        ("hybrid", one.metrics),
        ("bm25", one.metrics),
    ]
    assert unbundle(one.model_dump(mode="json")) == [
        Headline.model_validate(one, from_attributes=True)
    ]
    for bad in ([], {"runs": "no"}, {"metrics": [1]}, {"runs": [{"config": {}}]}):
        with pytest.raises(BaselineError, match="not an evaluation report"):
            unbundle(bad)


@pytest.mark.parametrize(("path", "model"), [(REPORT_V1, Report), (REPORT_V1_RUNS, Runs)])
def test_reports_written_before_typed_reports_keep_their_exact_json(
    path: Path, model: type[Report | Runs]
) -> None:
    text = path.read_text(encoding="utf-8")
    again = model.model_validate_json(text).model_dump(mode="json")
    assert json.dumps(again, indent=2, ensure_ascii=False) + "\n" == text


@pytest.fixture(scope="module")
def article_runs(seed_service: Any) -> list[Report]:
    """Dense and hybrid on the labelled article set, as the v1 fixtures were made (top-k 100)."""
    dataset = load_dataset(ARTICLE_QUESTIONS, collection=seed_service.settings.collection)
    return evaluate(seed_service, dataset, ["dense", "hybrid"], top_k=100, progress=False)


@pytest.mark.parametrize("path", [REPORT_V1, REPORT_V1_RUNS])
def test_a_report_written_before_typed_reports_gates_a_fresh_run(
    path: Path, article_runs: list[Report]
) -> None:
    baseline = load_baseline(path)
    assert [run.config.retriever for run in baseline] == (
        ["hybrid"] if path == REPORT_V1 else ["dense", "hybrid"]
    )
    regressions, notes = compare(baseline, article_runs, 0.01)
    assert regressions == []
    assert notes == (
        [] if path == REPORT_V1_RUNS else ["dense: not in the baseline (baseline has hybrid)"]
    )


def test_bad_baseline_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"old\.json: no such baseline file"):
        load_baseline(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"bad\.json: unreadable baseline \(Expecting"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"results": []}', encoding="utf-8")
    with pytest.raises(BaselineError, match=r"other\.json: not an evaluation report"):
        load_baseline(tmp_path / "other.json")


# the command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(eval_command)
    return app


def test_cli_bad_paths_and_lines_exit_2_naming_the_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_app(), [str(tmp_path / "nope")])
    assert (
        result.exit_code == 2
        and f"error: {tmp_path / 'nope'}: no such file or folder" in result.output
    )
    bad = write_lines(tmp_path / "bad.jsonl", ['{"question": "fine?"}', '{"question": '])
    result = runner.invoke(_app(), [str(bad), "--corpus", str(SEED_FILE)])
    assert result.exit_code == 2 and f"error: {bad}:2: malformed JSON" in result.output
    result = runner.invoke(_app(), [str(bad), "--retriever", "sparse"])
    assert result.exit_code == 2 and "unknown retriever 'sparse'" in result.output
    result = runner.invoke(_app(), [str(bad), "--baseline", str(tmp_path / "old.json")])
    assert result.exit_code == 2 and "no such baseline file" in result.output


def test_cli_builds_once_reuses_the_cache_and_gates(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "qa.service.Embedder", lambda *args, **kwargs: embedder
    )  # the session's model
    folder = tiny_beir(tmp_path / "tiny")
    cache, out, md = tmp_path / "cache", tmp_path / "r.json", tmp_path / "r.md"
    runner = CliRunner()
    args = [str(folder), "--collection-cache", str(cache), "--no-progress"]
    first = runner.invoke(
        _app(), [*args, "-r", "dense", "-r", "bm25", "--out", str(out), "--markdown", str(md)]
    )
    assert first.exit_code == 0, first.output
    runs = json.loads(out.read_text())["runs"]
    assert [r["config"]["retriever"] for r in runs] == ["dense", "bm25"]
    report = runs[0]
    assert set(report) >= {
        "dataset",
        "split",
        "config",
        "metrics",
        "latency_ms",
        "qps",
        "per_query",
    }
    assert list(report["metrics"]) == list(HEADLINE) and set(report["latency_ms"]) >= {"p50", "p95"}
    assert report["metrics"]["mrr@10"] == 1.0  # three easy questions
    assert (
        report["config"]["collection"].startswith("eval-tiny-")
        and report["config"]["collection_built_now"]
    )
    assert "| dense |" in md.read_text() and "| bm25 |" in md.read_text()

    # the same corpus and model: the cached collection is reused, not rebuilt
    single = tmp_path / "single.json"
    second = runner.invoke(_app(), [*args, "--out", str(single)])
    assert second.exit_code == 0, second.output
    again = json.loads(single.read_text())
    assert again["config"]["collection"] == report["config"]["collection"]
    assert again["config"]["collection_built_now"] is False
    assert again["config"]["retriever"] == "hybrid"  # the default

    # the gate: a baseline that was 0.005 better passes at --max-drop 0.01; 0.05 better fails
    for bump, code in ((0.005, 0), (0.05, 1)):
        baseline = json.loads(out.read_text())
        baseline["runs"][0]["metrics"]["ndcg@10"] += bump
        old = tmp_path / f"old-{bump}.json"
        old.write_text(json.dumps(baseline))
        gated = runner.invoke(
            _app(), [*args, "-r", "dense", "--baseline", str(old), "--max-drop", "0.01"]
        )
        assert gated.exit_code == code, gated.output
        if code:
            assert "REGRESSION dense: ndcg@10 fell by 0.0500" in gated.output
        else:
            assert "gate passed" in gated.output

    # a baseline without this run's retriever is an error naming the file
    gated = runner.invoke(_app(), [*args, "-r", "bm25", "--baseline", str(REPORT_V1)])
    assert gated.exit_code == 2
    assert f"error: {REPORT_V1}: the baseline has no run for any retriever" in gated.output

    # a damaged cached collection is rebuilt rather than reported
    live = cache / report["config"]["collection"]
    next((live / "segments").glob("seg-*/dense.faiss")).write_bytes(b"garbage")
    third = runner.invoke(_app(), [*args, "--out", str(single)])
    assert third.exit_code == 0, third.output
    assert json.loads(single.read_text())["config"]["collection_built_now"] is True


def test_cli_gates_the_article_set_against_a_report_written_before_typed_reports(
    seed_index_dir: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa.service.Embedder", lambda *args, **kwargs: embedder)
    monkeypatch.setenv("QA_INDEX_DIR", str(seed_index_dir))
    args = [str(ARTICLE_QUESTIONS), "-c", "default", "-r", "dense", "-r", "hybrid", "--no-progress"]
    result = CliRunner().invoke(_app(), [*args, "--baseline", str(REPORT_V1_RUNS)])
    assert result.exit_code == 0, result.output
    assert f"gate passed: no headline metric fell by more than 0.0100 against {REPORT_V1_RUNS}" in (
        result.output
    )


def test_qa_eval_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0 and "--baseline" in result.stdout
    assert "(default: hybrid)" in result.stdout
