"""The one reading of every "better / worse / same" the study states, and of what is too small to judge.

A comparison is a difference on the same articles (this minus that, per-article MAE or F1) with its 95%
paired bootstrap CI, read against an equivalence margin (config `equivalence_margin`, MAE, and
`equivalence_margin_f1`): with "better" meaning lower for MAE and higher for F1, a CI wholly on the
better side of the margin is "better", wholly on the worse side "worse", wholly inside ±margin
"equivalent", anything else "inconclusive". A single-number baseline (no per-article predictions) is
read the same way from the CI of the value minus that number, and recorded as unpaired. Nothing here
reads overlapping marginal CIs.

Pure functions of plain numbers; the evaluation JSON records their answers, the report words them.
"""
from __future__ import annotations

import math
from typing import Literal

from study.metrics import SUCCESS_BANDS, finite, success_band

BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent", "inconclusive"
VERDICTS = (BETTER, WORSE, EQUIVALENT, INCONCLUSIVE)
NO_BETTER_THAN_MEAN = "no better than predicting the training mean"
NO_BETTER_THAN_ALWAYS_YES = "no better than saying yes to every article"   # its yes/no counterpart
TOO_FEW = "too few to judge"
CURVE_READINGS = {BETTER: "still falling", EQUIVALENT: "flat", WORSE: "rising", INCONCLUSIVE: "inconclusive"}

Direction = Literal["lower", "higher"]   # which way is better: lower (MAE) or higher (F1)


def verdict(ci, margin: float, better: Direction = "lower") -> str:
    """'better', 'worse', 'equivalent' or 'inconclusive' for a difference (this minus that) whose CI is `ci`
    (low, high), against ±`margin`. An undefined CI (None or NaN) is 'inconclusive'."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', found {better!r}")
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"the equivalence margin must be a finite number >= 0, found {margin!r}")
    lo, hi = ci
    if not (finite(lo) and finite(hi)) or lo > hi:
        return INCONCLUSIVE
    if better == "higher":   # a gain in F1 is a fall in -F1
        lo, hi = -hi, -lo
    if hi < -margin:
        return BETTER
    if lo > margin:
        return WORSE
    if -margin <= lo and hi <= margin:
        return EQUIVALENT
    return INCONCLUSIVE


def paired_reading(difference: float, ci, margin: float, better: Direction = "lower") -> dict:
    """The record of a paired comparison on the same articles: {"difference", "ci95", "margin", "better",
    "paired": True, "verdict"}."""
    return {"difference": difference, "ci95": list(ci), "margin": margin, "better": better, "paired": True,
            "verdict": verdict(ci, margin, better)}


def unpaired_reading(value: float, ci, reference: float, margin: float, better: Direction = "lower") -> dict:
    """A value with its CI (e.g. the test MAE) against a single number without per-article predictions (e.g. the
    fine-tuned model's MAE from config): the CI of value minus reference, read by the same rule and recorded as
    unpaired: {"difference", "ci95", "margin", "better", "paired": False, "reference", "verdict"}."""
    lo, hi = ci
    shifted = [lo - reference if finite(lo) else None, hi - reference if finite(hi) else None]
    return {"difference": value - reference, "ci95": shifted, "margin": margin, "better": better, "paired": False,
            "reference": reference, "verdict": verdict(shifted, margin, better)}


def null_result(verdict_vs_trivial: str, phrase: str = NO_BETTER_THAN_MEAN) -> str | None:
    """`phrase` ('no better than predicting the training mean'; NO_BETTER_THAN_ALWAYS_YES for yes/no labels)
    unless the paired comparison with that trivial predictor says 'better'; None when it does."""
    return None if verdict_vs_trivial == BETTER else phrase


def bands_spanned(ci, baseline_mae: float, margins: dict) -> list[str]:
    """Every success band (study/metrics.py `success_band`) from the CI's low end to its high end, best first:
    ["closes the gap", "partial"] for a CI straddling the closes-the-gap limit."""
    lo, hi = ci
    first, last = (SUCCESS_BANDS.index(success_band(x, baseline_mae, margins)) for x in (lo, hi))
    return list(SUCCESS_BANDS[first:last + 1])


def band_phrase(bands: list[str]) -> str:
    """`bands_spanned` in words, the worst band the CI allows first: 'partial, possibly closes the gap'."""
    worst, *better = reversed(bands)
    return worst if not better else f"{worst}, possibly {' or '.join(better)}"


def too_few_to_judge(n: int, positives: int | None = None, *, min_articles: int, min_positives: int) -> bool:
    """A group (a language, the truncated articles, the skipped articles) too small to state a figure for:
    fewer than `min_articles` articles, or (yes/no labels, `positives` given) fewer than `min_positives` yes."""
    return n < min_articles or (positives is not None and positives < min_positives)


def doubling_reference(n_trains: list[int]) -> int | None:
    """The index of the point a learning curve's last point is read against: the largest training size at most
    half the last one (the last doubling, whatever fractions were asked), else the smallest; None for one point."""
    if len(n_trains) < 2:
        return None
    last = n_trains[-1]
    halves = [i for i, n in enumerate(n_trains[:-1]) if n <= last / 2]
    return max(halves, key=lambda i: n_trains[i]) if halves else min(range(len(n_trains) - 1), key=lambda i: n_trains[i])


def curve_reading(n_reference: int, n_last: int, difference: float, ci, margin: float) -> dict:
    """A learning curve read by the comparison rule, per doubling of the training articles: the paired
    difference (last minus reference point, per-article test MAE) and its CI divided by log2(n_last /
    n_reference), read against the margin. better: 'still falling' (another doubling would lower the MAE by
    more than the margin), equivalent: 'flat', worse: 'rising', else 'inconclusive'.
    {"n_reference", "n_last", "doublings", "per_doubling", "per_doubling_ci95", "margin", "verdict", "reading"}."""
    if not n_last > n_reference > 0:
        raise ValueError(f"a learning curve step needs 0 < n_reference < n_last, found {n_reference} and {n_last}")
    doublings = math.log2(n_last / n_reference)
    lo, hi = ci
    scaled = [lo / doublings if finite(lo) else None, hi / doublings if finite(hi) else None]
    v = verdict(scaled, margin, "lower")
    return {"n_reference": int(n_reference), "n_last": int(n_last), "doublings": doublings,
            "per_doubling": difference / doublings, "per_doubling_ci95": scaled, "margin": margin,
            "verdict": v, "reading": CURVE_READINGS[v]}
