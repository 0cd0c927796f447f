"""Fit the answer-sentence chooser's weights on labelled questions; check them on others.

    python scripts/fit_answer_choice.py --collection pydocs \\
        --fit scripts/data/pydocs_questions_tune.jsonl scripts/data/pydocs_factoid_tune.jsonl \\
        --check scripts/data/pydocs_questions_test.jsonl scripts/data/pydocs_factoid_test.jsonl

Every sentence of each answerable question's top passages is a candidate, labelled by
whether it holds one of the question's answer words (the same test ``qa eval`` uses), with
the features the service computes (``qa.search.evidence``). A logistic regression (scikit-
learn, which sentence-transformers already installs) is fitted on the ``--fit`` questions
(several files, each ``FILE`` or ``FILE@COLLECTION``, are fitted on together)
and printed as the ``WEIGHTS`` tuple to paste into ``qa/search/evidence.py``. For every
file the script prints how often the top candidate holds the answer (no abstention), with
the shipped weights and with the new fit. ``--check`` files are never fitted on; a check
file can name another collection as ``FILE@COLLECTION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import make_parser, say
from sklearn.linear_model import LogisticRegression

from qa.config import Settings
from qa.evaluation.datasets import contains, load_questions
from qa.search.answer import candidate_features, ranked_passages
from qa.search.evidence import FEATURES, WEIGHTS, scores
from qa.search.followups import build_query
from qa.service import QAService


@dataclass(frozen=True)
class Question:
    """One answerable question's candidates: features and labels."""

    rows: np.ndarray
    labels: np.ndarray


def candidates_of(service: QAService, path: Path, collection: str) -> list[Question]:
    """The labelled candidates of every answerable question with answer words in ``path``."""
    loaded = service.collection(collection)
    params = service.params.of(loaded.name)
    retriever = service.retriever(loaded, None, params.fusion)
    out = []
    for question in load_questions(path):
        if not (question.answerable and question.answer):
            continue
        query = build_query(question.text, question.history, service.embedder)
        hits = retriever.search(query, params.answer.sentence_passages)
        passages = ranked_passages(hits, loaded.passages(h.passage_id for h in hits))
        top = passages[: params.answer.sentence_passages]
        vectors = loaded.sentences(p.passage_id for p in top)
        _, texts, rows, _ = candidate_features(query, top, vectors, loaded.lexical)
        labels = np.array([any(contains(t, a) for a in question.answer) for t in texts])
        out.append(Question(rows, labels))
    say(f"{path}: {len(out)} answerable questions")
    return out


def hits(questions: list[Question], weights: np.ndarray) -> str:
    """How many questions' best-scored candidate holds the answer."""
    right = sum(
        bool(q.labels[int(np.argmax(scores(q.rows, weights)))]) for q in questions if len(q.rows)
    )
    return f"{right}/{len(questions)}"


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--collection", required=True, help="collection the questions are about")
    parser.add_argument(
        "--fit",
        nargs="+",
        required=True,
        help="labelled questions to fit on: FILE or FILE@COLLECTION",
    )
    parser.add_argument("--check", nargs="*", default=[], help="FILE or FILE@COLLECTION")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()
    service = QAService(Settings(reply_cache=0))
    fit = [q for spec in args.fit for q in candidates_of(service, *_spec(spec, args.collection))]
    usable = [
        q for q in fit if q.labels.any()
    ]  # a question whose answer was not found teaches nothing
    model = LogisticRegression(C=args.c, max_iter=5000)
    model.fit(np.vstack([q.rows for q in usable]), np.concatenate([q.labels for q in usable]))
    fitted = np.round(model.coef_[0], 2)
    print("FEATURES =", FEATURES)
    print("WEIGHTS =", tuple(float(w) for w in fitted))
    print("| questions | shipped weights | this fit |\n|---|---:|---:|")
    shipped = np.array(WEIGHTS)
    print(f"| {' + '.join(args.fit)} (fitted on) | {hits(fit, shipped)} | {hits(fit, fitted)} |")
    for spec in args.check:
        check = candidates_of(service, *_spec(spec, args.collection))
        print(f"| {spec} | {hits(check, shipped)} | {hits(check, fitted)} |")


def _spec(spec: str, collection: str) -> tuple[Path, str]:
    """``FILE`` or ``FILE@COLLECTION`` as a path and a collection name."""
    path, _, named = spec.partition("@")
    return Path(path), named or collection


if __name__ == "__main__":
    main()
