"""Calibrate the check of generated sentences (QA_LLM_MIN_SUPPORT) on labelled sentences.

    python scripts/calibrate_verifier.py --scifact ../shared/datasets/scifact \\
        --collection scifact --article scripts/data/songjiang_questions.jsonl

Sentences cited to a gold passage are either supported by it or swapped in from
elsewhere (see calibrate_verifier_data.py). The blend of meaning and word overlap and the
bar are chosen on SciFact's **train** claims: the highest recall (supported sentences kept)
whose precision (kept sentences that are supported) is at least --min-precision; then the
chosen setting is reported on SciFact's **test** claims and on the article's questions,
which played no part in choosing it. Needs the SciFact corpus indexed as --collection
(``qa index ../shared/datasets/scifact/corpus.jsonl --collection scifact``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calibrate_verifier_data import Builder, Example, article_items, scifact_items
from harness import ROOT, SCIFACT, make_parser, say, table

from qa.config import Settings
from qa.service import QAService

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
BARS = [round(0.01 * i, 2) for i in range(101)]


@dataclass(frozen=True)
class Score:
    """How one setting did on a set of labelled sentences."""

    weight: float
    bar: float
    precision: float
    recall: float
    kept: int
    supported: int
    unsupported: int

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def kept(example: Example, weight: float, bar: float) -> bool:
    """The verifier's rule (qa/generation/verify.py) for one measured sentence."""
    support = weight * max(example.meaning, 0.0) + (1 - weight) * example.words
    return example.figures_found and support >= bar


def score(examples: list[Example], weight: float, bar: float) -> Score:
    labelled = [e for e in examples if e.supported is not None]
    keep = [e for e in labelled if kept(e, weight, bar)]
    right = sum(1 for e in keep if e.supported)
    supported = sum(1 for e in labelled if e.supported)
    return Score(
        weight,
        bar,
        right / len(keep) if keep else 1.0,
        right / supported if supported else 0.0,
        len(keep),
        supported,
        len(labelled) - supported,
    )


def choose(examples: list[Example], min_precision: float) -> Score:
    """The most recall at the precision floor (ties: the higher bar); else the best F1."""
    scores = [score(examples, w, b) for w in WEIGHTS for b in BARS]
    good = [s for s in scores if s.precision >= min_precision]
    if good:
        return max(good, key=lambda s: (round(s.recall, 4), s.bar))
    return max(scores, key=lambda s: s.f1)


def categories(examples: list[Example], weight: float, bar: float) -> list[list[object]]:
    rows = []
    names = sorted({(e.dataset, e.category, e.supported) for e in examples}, key=str)
    for dataset, category, supported in names:
        group = [e for e in examples if (e.dataset, e.category) == (dataset, category)]
        share = sum(1 for e in group if kept(e, weight, bar)) / len(group)
        label = {True: "supported", False: "unsupported", None: "unlabelled"}[supported]
        rows.append([dataset, category, label, len(group), f"{share:.3f}"])
    return rows


def build(args: object) -> dict[str, list[Example]]:
    """Every dataset's measured examples."""
    service = QAService(Settings())
    sets: dict[str, list[Example]] = {}
    for split, limit in (("train", args.train_limit), ("test", args.test_limit)):
        name = f"SciFact {split}"
        builder = Builder(service, args.collection, name)
        claims = scifact_items(args.scifact, split, limit)
        for n, item in enumerate(claims, start=1):
            builder.question(item, claim=item.question)
            if n % 50 == 0:
                say(f"{name}: {n}/{len(claims)} claims")
        sets[name] = builder.examples
    service.ensure_default(progress=False)
    builder = Builder(service, service.settings.collection, "article")
    for item in article_items(args.article):
        builder.question(item)
    sets["article"] = builder.examples
    return sets


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--scifact", type=Path, default=SCIFACT)
    parser.add_argument("--collection", default="scifact", help="SciFact's corpus, indexed")
    parser.add_argument(
        "--article", type=Path, default=ROOT / "scripts/data/songjiang_questions.jsonl"
    )
    parser.add_argument("--train-limit", type=int, default=300)
    parser.add_argument("--test-limit", type=int, default=300)
    parser.add_argument("--min-precision", type=float, default=0.95)
    args = parser.parse_args()
    sets = build(args)
    chosen = choose(sets["SciFact train"], args.min_precision)
    print(
        f"chosen on SciFact train: meaning weight {chosen.weight}, bar {chosen.bar} "
        f"(precision >= {args.min_precision}, most recall)\n"
    )
    rows = []
    for name, examples in sets.items():
        s = score(examples, chosen.weight, chosen.bar)
        rows.append(
            [
                name,
                s.supported,
                s.unsupported,
                f"{s.precision:.3f}",
                f"{s.recall:.3f}",
                f"{s.f1:.3f}",
            ]
        )
    columns = ["set", "supported", "unsupported", "precision", "recall", "F1"]
    print("\n".join(table(columns, rows, "lrrrrr")))
    print()
    every = [e for examples in sets.values() for e in examples]
    columns = ["set", "sentences", "label", "n", "kept"]
    print("\n".join(table(columns, categories(every, chosen.weight, chosen.bar), "lllrr")))
    print("\nprecision/recall on SciFact train by bar at the chosen weight:")
    curve = [score(sets["SciFact train"], chosen.weight, b / 100) for b in range(40, 86, 5)]
    cells = [[f"{s.bar:.2f}", f"{s.precision:.3f}", f"{s.recall:.3f}"] for s in curve]
    print("\n".join(table(["bar", "precision", "recall"], cells, "rrr")))


if __name__ == "__main__":
    main()
