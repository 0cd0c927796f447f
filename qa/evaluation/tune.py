"""``qa tune``: fit a collection's fusion weight, sentence weight and abstention threshold
on its own labelled questions, with k-fold cross-validation.

* The ranking settings (``fusion_alpha`` x ``sentence_weight`` on a small grid that holds
  the defaults) are judged by nDCG@10 on the answerable questions.
* The abstention bar (``min_answer_score`` with ``missing_term_weight``) is chosen for a
  stated precision: for each weight, the highest threshold at which at most
  ``max_false_abstain`` (default 5%) of the answerable questions go unanswered, and of those
  the one that abstains on the most questions without gold (the documents don't answer
  them). It needs both kinds of question (else it is kept).
* For each fold the best setting on the other folds is scored on the held-out fold against
  the defaults. A setting is taken only when the mean held-out gain is positive and larger
  than its standard deviation between folds (the noise); otherwise the defaults stay. A
  default threshold that already refuses more answerable questions than allowed is lowered.
* Every question is asked once per grid point; the folds reuse those scores.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.evaluation.datasets import Dataset
from qa.evaluation.labelled import (
    METRIC,
    Scored,
    abstention_accuracy,
    mean_ndcg,
    score_questions,
)
from qa.store.tuning import TunedValues, Tuning

if TYPE_CHECKING:
    from qa.search import SearchParams
    from qa.service import QAService
    from qa.store import Collection

ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7)
SENTENCE_WEIGHTS = (0.0, 0.3, 0.6, 0.8)
DECIMALS = 4  # of a tuned threshold
# answer score lost per unit of idf of the rarest question term no considered passage holds
MISSING_WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5)
MIN_PER_FOLD = 2  # questions of a kind each fold needs, else the defaults are kept
MAX_FALSE_ABSTAIN = 0.05  # share of answerable questions the tuned threshold may refuse
SEED = 19  # folds are drawn the same way every run

Grid = tuple[float, float]  # (fusion_alpha, sentence_weight)
Bar = tuple[float, float]  # (min_answer_score, missing_term_weight)


@dataclass
class Decision:
    """One group of settings: chosen values, evidence and the reason."""

    values: dict[str, float]  # empty: the defaults stay
    gain: float | None
    noise: float | None
    reason: str


def folds_of(n: int, k: int) -> list[list[int]]:
    """``k`` folds of ``range(n)``, shuffled with a fixed seed."""
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def cross_validate(
    candidates: Sequence[object],
    default: object,
    value: Callable[[object, int], float],
    questions: Sequence[int],
    k: int,
) -> tuple[float, float, object]:
    """Mean held-out gain over the defaults, its standard deviation between folds, and the
    best candidate on all ``questions`` (``value(candidate, question)`` scores one)."""

    def mean(candidate: object, subset: Sequence[int]) -> float:
        return sum(value(candidate, q) for q in subset) / len(subset)

    gains = []
    for fold in folds_of(len(questions), k):
        held = [questions[i] for i in fold]
        left_out = set(held)
        train = [q for q in questions if q not in left_out]
        best = max(candidates, key=lambda c: (mean(c, train), c == default))
        gains.append(mean(best, held) - mean(default, held))
    chosen = max(candidates, key=lambda c: (mean(c, questions), c == default))
    return statistics.fmean(gains), statistics.stdev(gains), chosen


def _decide(gain: float, noise: float, what: str, values: dict[str, float]) -> Decision:
    """Take ``values`` only when the gain beats the noise."""
    if gain > 0 and gain > noise:
        return Decision(
            values, gain, noise, f"{what}: held-out gain {gain:+.4f} > noise {noise:.4f}"
        )
    return Decision(
        {},
        gain,
        noise,
        f"{what}: held-out gain {gain:+.4f} within noise {noise:.4f}; defaults kept",
    )


def tune_ranking(runs: dict[Grid, list[Scored]], default: Grid, k: int) -> Decision:
    """Choose ``fusion_alpha`` and ``sentence_weight`` by nDCG@10."""
    answerable = [i for i, s in enumerate(runs[default]) if s.answerable]
    if len(answerable) < k * MIN_PER_FOLD:
        return Decision(
            {},
            None,
            None,
            f"ranking: {len(answerable)} questions with gold are too few for {k} folds; defaults kept",
        )

    def value(grid: object, q: int) -> float:
        return runs[grid][q].ndcg or 0.0  # type: ignore[index]

    gain, noise, best = cross_validate(list(runs), default, value, answerable, k)
    alpha, weight = best  # type: ignore[misc]
    values = {} if best == default else {"fusion_alpha": alpha, "sentence_weight": weight}
    whole = statistics.fmean(value(best, q) - value(default, q) for q in answerable)
    what = f"ranking ({METRIC}; best on all: alpha {alpha}, sentence weight {weight}, {whole:+.4f})"
    return _decide(gain, noise, what, values)


def tune_threshold(
    scored: list[Scored], default: Bar, k: int, budget: float = MAX_FALSE_ABSTAIN
) -> Decision:
    """Choose the abstention bar: for each missing-term weight, the highest threshold that
    refuses at most ``budget`` of the answerable questions; of those, the one that abstains
    on the most unanswerable questions. Kept when it abstains on more of them than the
    default does on held-out folds (beyond the noise)."""
    judged = [i for i, s in enumerate(scored) if s.judged]
    without = [i for i in judged if not scored[i].answerable]
    if len(without) < k * MIN_PER_FOLD or len(judged) - len(without) < k * MIN_PER_FOLD:
        return Decision(
            {},
            None,
            None,
            f"abstention: needs at least {k * MIN_PER_FOLD} questions with gold and as many "
            f"without (the documents don't answer them); it has {len(judged) - len(without)} "
            f"and {len(without)}; default kept",
        )
    weights = sorted({*MISSING_WEIGHTS, default[1]})
    gains, refused = [], []
    for fold in folds_of(len(judged), k):
        held = [judged[i] for i in fold]
        train = sorted(set(judged) - set(held))
        bar = best_bar(scored, train, weights, budget)
        gains.append(_abstained(scored, held, bar) - _abstained(scored, held, default))
        refused.append(false_abstention(scored, held, bar))
    chosen = best_bar(scored, judged, weights, budget)
    gain, noise = statistics.fmean(gains), statistics.stdev(gains)
    what = (
        f"abstention (at most {budget:.0%} of answerable questions refused: threshold "
        f"{chosen[0]:.2f}, missing-term weight {chosen[1]:g}, held-out "
        f"{statistics.fmean(refused):.1%} refused, unanswerable abstained {gain:+.1%} over "
        "the default)"
    )
    names = ("min_answer_score", "missing_term_weight")
    values = {name: float(v) for name, v, d in zip(names, chosen, default) if v != d}
    if false_abstention(scored, judged, default) > budget:
        reason = f"{what}: the default refuses more answerable questions than allowed"
        return Decision(values, gain, noise, reason)
    return _decide(gain, noise, what, values)


def best_bar(
    scored: Sequence[Scored], questions: Sequence[int], weights: Sequence[float], budget: float
) -> Bar:
    """For each weight the highest threshold within ``budget``; of those bars, the one
    that abstains on the most of the ``questions`` without gold (the smaller weight on a tie)."""
    bars = [(highest_within(scored, questions, budget, w), w) for w in weights]
    return max(bars, key=lambda bar: (_abstained(scored, questions, bar), -bar[1]))


def highest_within(
    scored: Sequence[Scored], questions: Sequence[int], budget: float, weight: float = 0.0
) -> float:
    """The highest threshold at which at most ``budget`` of the answerable ``questions`` go
    unanswered: one of their answer scores (less ``weight`` x the missing term's idf), to
    4 decimals, so no grid bounds it."""
    answerable = [scored[q] for q in questions if scored[q].answerable]
    values = sorted(
        math.floor((s.answer_score - weight * s.missing) * 10**DECIMALS) / 10**DECIMALS
        for s in answerable
        if s.answer_score is not None
    )
    refusable = math.floor(budget * len(answerable)) - (len(answerable) - len(values))
    if not values or refusable < 0:
        return min(values, default=0.0)
    return values[min(refusable, len(values) - 1)]


def false_abstention(scored: Sequence[Scored], questions: Sequence[int], bar: Bar) -> float:
    """Share of the answerable ``questions`` left unanswered at ``bar``."""
    answerable = [q for q in questions if scored[q].answerable]
    refused = sum(1 for q in answerable if not scored[q].answered(*bar))
    return refused / len(answerable) if answerable else 0.0


def _abstained(scored: Sequence[Scored], questions: Sequence[int], bar: Bar) -> float:
    """Share of the ``questions`` without gold abstained on at ``bar``."""
    without = [q for q in questions if scored[q].judged and not scored[q].answerable]
    return sum(1 for q in without if not scored[q].answered(*bar)) / max(1, len(without))


def _params(base: SearchParams, alpha: float, weight: float) -> SearchParams:
    fusion = dataclasses.replace(base.fusion, alpha=alpha, sentence_weight=weight)
    return dataclasses.replace(base, fusion=fusion)


def summary(scored: list[Scored], bar: Bar) -> dict[str, float | None]:
    """The before/after table's row of one setting."""
    rate = sum(1 for s in scored if not s.answered(*bar)) / len(scored) if scored else None
    everything = range(len(scored))
    has_without = any(s.judged and not s.answerable for s in scored)
    return {
        METRIC: mean_ndcg(scored),
        "abstention_accuracy": abstention_accuracy(scored, *bar),
        "abstention_rate": rate,
        "false_abstention": false_abstention(scored, everything, bar),
        "unanswerable_abstained": _abstained(scored, everything, bar) if has_without else None,
    }


def tune(
    service: QAService,
    collection: Collection,
    dataset: Dataset,
    folds: int = 5,
    progress: Callable[[str], None] = lambda _: None,
    max_false_abstain: float = MAX_FALSE_ABSTAIN,
) -> Tuning:
    """Fit the collection's settings on ``dataset`` (the service's configured values are the
    defaults: an earlier tuning of the collection is not the baseline); the threshold may
    refuse at most ``max_false_abstain`` of the answerable questions."""
    base = service.params.default
    default: Grid = (base.fusion.alpha, base.fusion.sentence_weight)
    grid = sorted({default, *((a, w) for a in ALPHAS for w in SENTENCE_WEIGHTS)})
    runs: dict[Grid, list[Scored]] = {}
    for number, (alpha, weight) in enumerate(grid, 1):
        progress(f"[{number}/{len(grid)}] fusion_alpha={alpha} sentence_weight={weight}")
        answers = (alpha, weight) == default
        runs[(alpha, weight)] = score_questions(
            service, collection, dataset, _params(base, alpha, weight), with_answer=answers
        )
    ranking = tune_ranking(runs, default, folds)
    chosen: Grid = (
        ranking.values.get("fusion_alpha", default[0]),
        ranking.values.get("sentence_weight", default[1]),
    )
    scored = runs[default]
    if chosen != default:  # the answer scores of the chosen ranking
        scored = score_questions(service, collection, dataset, _params(base, *chosen))
    default_bar: Bar = (base.answer.min_score, base.answer.missing_term_weight)
    threshold = tune_threshold(scored, default_bar, folds, max_false_abstain)
    after_bar: Bar = (
        threshold.values.get("min_answer_score", default_bar[0]),
        threshold.values.get("missing_term_weight", default_bar[1]),
    )
    values = TunedValues(**ranking.values, **threshold.values)
    return Tuning(
        values=values,
        defaults={
            "fusion_alpha": default[0],
            "sentence_weight": default[1],
            "min_answer_score": base.answer.min_score,
            "missing_term_weight": base.answer.missing_term_weight,
        },
        decision=f"{ranking.reason}; {threshold.reason}",
        dataset=str(dataset.path),
        questions=len(dataset.questions),
        folds=folds,
        metric=METRIC,
        gain=ranking.gain,
        noise=ranking.noise,
        before=summary(runs[default], default_bar),
        after=summary(scored, after_bar),
        generation=collection.generation,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
