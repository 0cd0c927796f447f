"""Fit the answer-sentence model and the abstention model on labelled TUNING questions.

    python scripts/tune_answers.py scripts/data/pydocs_questions_tune.jsonl \\
        --corpus /usr/share/doc/python3.11/html --collection-cache /work/cache/pydocs
    QA_INDEX_DIR=index python scripts/tune_answers.py QUESTIONS.jsonl -c pydocs

For every question the service's own retrieval runs (hybrid, top 5 passages); each sentence
of those passages becomes a candidate with the signals of ``qa/search/features.py`` and the
label "holds an expected answer string". A logistic model over the candidates chooses the
sentence; a second one, over question-level signals of the candidates as the first model
ranks them (cross-fitted, so no question is scored by a model that saw it), says whether
the documents answer at all. The threshold is the answerability below which at most
``--max-false-abstain`` of the answerable tuning questions fall. The script prints the
fitted models as Python to paste into ``qa/search/answer_model.py``, and the figures of
5-fold cross-validation beside the previous choice (the best stored sentence cosine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from qa.config import Settings
from qa.evaluation import load_dataset
from qa.evaluation.datasets import contains
from qa.evaluation.prepare import ensure_collection
from qa.search import AnswerParams, build_query
from qa.search.answer import candidates, ranked_passages
from qa.search.answer_model import Logistic
from qa.search.features import QUESTION_FEATURES, SENTENCE_FEATURES, question_features
from qa.service import QAService

FOLDS = 5


def collect(service: QAService, collection: str, dataset) -> list[dict]:  # type: ignore[no-untyped-def]
    """Per question: its candidates' features and labels, and the question-level inputs."""
    loaded = service.collection(collection)
    params = AnswerParams()
    rows = []
    for question in dataset.questions:
        query = build_query(question.text, question.history, service.embedder)
        hits = service.retriever(loaded).search(query, params.sentence_passages)
        passages = ranked_passages(hits, loaded.passages(h.passage_id for h in hits))
        if not passages:
            continue
        top = [p.passage_id for p in passages]
        terms, found = candidates(query, passages, loaded.sentences(top), loaded.lexical, params)
        if not found:
            continue
        labels = [any(contains(c.text, a) for a in question.answer) for c in found]
        top_dense = float(loaded.vectors([top[0]])[0] @ query.vector)
        rows.append(
            {
                "id": question.id,
                "answerable": question.answerable,
                "labelled": bool(question.answer),
                "terms": terms,
                "candidates": found,
                "x": np.stack([c.features for c in found]),
                "y": np.asarray(labels, dtype=int),
                "top_dense": top_dense,
            }
        )
    return rows


def fit(x: np.ndarray, y: np.ndarray) -> Logistic:
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-6, x.std(axis=0), 1.0)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit((x - mean) / scale, y)
    weights = tuple(round(float(w), 4) for w in model.coef_[0])
    return Logistic(
        weights,
        round(float(model.intercept_[0]), 4),
        tuple(map(float, mean)),
        tuple(map(float, scale)),
    )


def sentence_accuracy(rows: list[dict], pick) -> float:  # type: ignore[no-untyped-def]
    """Share of labelled questions whose picked sentence holds an answer."""
    labelled = [r for r in rows if r["labelled"] and r["answerable"]]
    return sum(int(r["y"][pick(r)]) for r in labelled) / max(1, len(labelled))


def cross_fit(rows: list[dict]) -> tuple[list[np.ndarray], list[Logistic]]:
    """Each question's candidate probabilities from a model fitted without it."""
    folds = GroupKFold(n_splits=FOLDS)
    index = np.arange(len(rows))
    probabilities: list[np.ndarray] = [np.zeros(0)] * len(rows)
    models = []
    for train, held in folds.split(index, groups=[r["id"] for r in rows]):
        labelled = [rows[i] for i in train if rows[i]["labelled"] and rows[i]["answerable"]]
        model = fit(
            np.concatenate([r["x"] for r in labelled]), np.concatenate([r["y"] for r in labelled])
        )
        models.append(model)
        for i in held:
            probabilities[i] = model.probability(rows[i]["x"])
    return probabilities, models


def question_rows(
    rows: list[dict], probabilities: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    for row, p in zip(rows, probabilities):
        order = np.argsort(-p, kind="stable")
        ranked = [(row["candidates"][i], float(p[i])) for i in order]
        features.append(question_features(row["terms"], ranked, row["top_dense"]))
        labels.append(int(row["answerable"]))
    return np.stack(features), np.asarray(labels)


def print_model(name: str, model: Logistic, names: tuple[str, ...]) -> None:
    print(f"{name} = Logistic(")
    print(f"    weights={model.weights},  # {', '.join(names)}")
    print(f"    bias={model.bias},")
    print(f"    mean={tuple(round(v, 4) for v in model.mean)},")
    print(f"    scale={tuple(round(v, 4) for v in model.scale)},")
    print(")")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "questions", type=Path, nargs="+", help="labelled tuning question files (.jsonl)"
    )
    parser.add_argument("--corpus", type=Path, action="append", default=None)
    parser.add_argument("-c", "--collection", default=None, help="an existing collection to use")
    parser.add_argument("--collection-cache", type=Path, default=None)
    parser.add_argument("--max-false-abstain", type=float, default=0.05)
    args = parser.parse_args()
    overrides = {"index_dir": args.collection_cache} if args.collection_cache else {}
    service = QAService(Settings(**overrides))  # type: ignore[arg-type]
    rows = []
    for path in args.questions:
        dataset = load_dataset(path, corpus=args.corpus, collection=args.collection)
        prepared = ensure_collection(service, dataset)
        rows += collect(service, prepared.collection, dataset)
    probabilities, _ = cross_fit(rows)
    print(f"{len(rows)} questions; answer sentence correct (cross-validated):")
    print(
        f"  best stored sentence cosine: {sentence_accuracy(rows, lambda r: int(np.argmax(r['x'][:, 0]))):.3f}"
    )
    held = {id(r): p for r, p in zip(rows, probabilities)}
    print(
        f"  sentence model:              {sentence_accuracy(rows, lambda r: int(np.argmax(held[id(r)]))):.3f}"
    )
    qx, qy = question_rows(rows, probabilities)
    cv = np.zeros(len(rows))
    for train, test in GroupKFold(n_splits=FOLDS).split(qx, qy, groups=[r["id"] for r in rows]):
        cv[test] = fit(qx[train], qy[train]).probability(qx[test])
    threshold = float(np.quantile(cv[qy == 1], args.max_false_abstain))
    print(
        f"abstention at {threshold:.3f} (cross-validated): "
        f"unanswerable abstained {np.mean(cv[qy == 0] < threshold):.3f} of {int((qy == 0).sum())}, "
        f"answerable abstained {np.mean(cv[qy == 1] < threshold):.3f} of {int((qy == 1).sum())}"
    )
    labelled = [r for r in rows if r["labelled"] and r["answerable"]]
    print("\n# paste into qa/search/answer_model.py")
    print_model(
        "SENTENCE_MODEL",
        fit(np.concatenate([r["x"] for r in labelled]), np.concatenate([r["y"] for r in labelled])),
        SENTENCE_FEATURES,
    )
    print_model("QUESTION_MODEL", fit(qx, qy), QUESTION_FEATURES)
    print(f"MIN_ANSWERABILITY = {round(threshold, 4)}")


if __name__ == "__main__":
    main()
