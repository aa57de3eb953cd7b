"""The one reading of every "better / worse / same" the study states, and of what is too small to judge.

A comparison is a difference on the same articles (this minus that, per-article MAE or F1) with its 95%
paired bootstrap CI, read against an equivalence margin (config `equivalence_margin`, MAE, and
`equivalence_margin_f1`): with "better" meaning lower for MAE and higher for F1, a CI wholly on the
better side of the margin is "better", wholly on the worse side "worse", wholly inside ±margin
"equivalent", anything else "inconclusive". A single-number baseline (no per-article predictions) is
read the same way from the CI of the value minus that number, and recorded as unpaired: with the baseline's
own test size (`--baseline-n`) the CI carries both uncertainties and is a test; without it the reading is
descriptive. Nothing here reads overlapping marginal CIs.

Said in words by one function, `comparison_phrase`: "better than X", "worse than X (no better than it)",
"no better than X (equivalent within ±margin)", "not shown to beat X" (inconclusive, with the test articles a
difference of the margin would need). "No better than" is said of equivalent or worse only, never of
inconclusive. "Learns anything" is read against the best constant for the metric: for MAE the per-dimension
training median (CONSTANT, "a constant (the training median)"); the training mean is recorded beside it.

Pure functions of plain numbers; the evaluation JSON records their answers, the report words them.
"""
from __future__ import annotations

import math
from typing import Literal

from study.metrics import SUCCESS_BANDS, finite, success_band
from study.tasks import SCORES, YES_NO

BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = "better", "worse", "equivalent", "inconclusive"
VERDICTS = (BETTER, WORSE, EQUIVALENT, INCONCLUSIVE)
CONSTANT = SCORES.reference.words   # the training median, the best constant for MAE: what "learns anything" reads
MEAN = "the training mean"           # recorded beside it (the best constant for RMSE)
ALWAYS_YES = YES_NO.reference.words  # the yes/no counterpart of CONSTANT (study/tasks.py declares both)
POWER = 0.8                                      # the power of `articles_needed`
TOO_FEW = "too few to judge"
CURVE_READINGS = {BETTER: "still falling", EQUIVALENT: "flat", WORSE: "rising", INCONCLUSIVE: "inconclusive"}
CURVE_BOOTSTRAP_SEEDS = 10   # a learning curve's reading is read again under this many other bootstrap seeds

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


def unpaired_reading(value: float, ci, reference: float, margin: float, better: Direction = "lower", *,
                     n: int | None = None, baseline_n: int | None = None) -> dict:
    """A value with its CI (e.g. the test MAE on `n` articles) against a single number without per-article
    predictions (e.g. the fine-tuned model's MAE from config): the CI of value minus reference, read by the same
    rule and recorded as unpaired.

    With `baseline_n` (the test articles the reference was measured on) the reference's own uncertainty is added:
    its SE is taken as the value's SE scaled to its size (the same per-article spread: SE * sqrt(n / baseline_n)),
    so each half of the CI widens by sqrt(1 + n / baseline_n) and the reading is a test (`descriptive` False).
    Without it the CI holds the value's uncertainty alone: the reading is descriptive, not a test (at the margin it
    errs in about 8% of cases instead of 2.5% when both test sets are of one size).
    {"difference", "ci95", "margin", "better", "paired": False, "reference", "baseline_n", "descriptive",
    "verdict"}."""
    lo, hi = ci
    widen = 1.0
    if baseline_n is not None:
        if baseline_n < 1 or not n or n < 1:
            raise ValueError(f"a baseline's test size needs both sizes >= 1, found n={n}, baseline_n={baseline_n}")
        widen = math.sqrt(1 + n / baseline_n)
    shifted = [value - reference - (value - lo) * widen if finite(lo) else None,
               value - reference + (hi - value) * widen if finite(hi) else None]
    return {"difference": value - reference, "ci95": shifted, "margin": margin, "better": better, "paired": False,
            "reference": reference, "baseline_n": baseline_n, "descriptive": baseline_n is None,
            "verdict": verdict(shifted, margin, better)}


def articles_needed(ci, n: int, margin: float, power: float = POWER) -> int | None:
    """The test articles at which a difference of the margin is told from none (two-sided 95%, `power`), from the
    paired SD the CI implies (SD = SE * sqrt(n), SE = CI width / 3.92): ceil(n * ((1.96 + z_power) * SE /
    margin)^2). With that many articles a difference of twice the margin reads 'better' (or 'worse') at that power.
    None for an undefined CI, no articles or no margin."""
    from scipy.stats import norm

    lo, hi = ci
    if not (finite(lo) and finite(hi)) or hi < lo or n < 1 or not margin > 0:
        return None
    se = (hi - lo) / (2 * norm.ppf(0.975))
    return max(1, math.ceil(n * ((norm.ppf(0.975) + norm.ppf(power)) * se / margin) ** 2))


def comparison_phrase(verdict_word: str, reference: str, *, margin: float | None = None,
                      needed: int | None = None, n: int | None = None) -> str:
    """The one reading in words of a comparison with `reference` ('a constant (the training median)'):
    better: 'better than X'; worse: 'worse than X (no better than it)'; equivalent: 'no better than X (equivalent
    within ±margin)'; inconclusive: 'not shown to beat X' and, with `needed` (`articles_needed`), 'a difference of
    the margin would need about N test articles (here n)'. "No better than" is never said of inconclusive."""
    if verdict_word == BETTER:
        return f"better than {reference}"
    if verdict_word == WORSE:
        return f"worse than {reference} (no better than it)"
    if verdict_word == EQUIVALENT:
        return f"no better than {reference} (equivalent" + (f" within ±{margin:g})" if margin is not None else ")")
    if verdict_word != INCONCLUSIVE:
        raise ValueError(f"a verdict is one of {', '.join(VERDICTS)}, found {verdict_word!r}")
    out = f"not shown to beat {reference} (inconclusive"
    if needed is not None and margin is not None:
        out += (f"; a difference of ±{margin:g} would need about {needed:,} test articles to be told from none"
                + (f", here {n:,}" if n is not None else ""))
    return out + ")"


def reading_phrase(verdict_word: str, reference: str, *, ci=None, n: int | None = None,
                   margin: float | None = None) -> str:
    """`comparison_phrase` of a recorded comparison (its verdict, 95% CI, articles and margin): an inconclusive one
    with the test articles a difference of the margin would need (`articles_needed`)."""
    needed = articles_needed(ci, n, margin) if verdict_word == INCONCLUSIVE and ci is not None and n and margin \
        else None
    return comparison_phrase(verdict_word, reference, margin=margin, needed=needed, n=n)


def null_result(verdict_vs_trivial: str, reference: str = CONSTANT, **recorded) -> str | None:
    """`reading_phrase` of the best probe against the trivial reference (CONSTANT, the training median; ALWAYS_YES
    for yes/no labels) unless the comparison says 'better'; None when it does. `recorded`: ci, n, margin."""
    return None if verdict_vs_trivial == BETTER else reading_phrase(verdict_vs_trivial, reference, **recorded)


def unpaired_note(reading) -> str:
    """How an unpaired reading against a single figure was made, for the text beside its verdict: a test with both
    uncertainties (the baseline's test size known) or descriptive."""
    get = reading.get if isinstance(reading, dict) else lambda k: getattr(reading, k, None)
    if get("paired"):
        return "paired on the same articles"
    n = get("baseline_n")
    return (f"unpaired, with the baseline's own uncertainty from its {n:,} test articles" if n else
            "unpaired against a single figure: descriptive, not a test (its own uncertainty is unknown; give "
            "--baseline-n or config baseline_n)")


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


def claim_p_value(ci, margin: float, verdict_word: str, better: Direction = "lower") -> float:
    """The two-sided p-value of what a verdict claims, from its 95% CI by a normal approximation (SE = CI width /
    3.92, centre = the CI's midpoint), so that p <= 0.05 exactly when the rule decided: 'better' (the difference is
    beyond -margin), 'worse' (beyond +margin), 'equivalent' (inside ±margin, two one-sided tests); 1 for
    'inconclusive' (nothing claimed) and for an undefined CI. The rule decides on the percentile CI, which need not be
    symmetric: a decided verdict's p is capped at 0.05."""
    from scipy.stats import norm

    lo, hi = ci
    if verdict_word == INCONCLUSIVE or not (finite(lo) and finite(hi)) or hi < lo:
        return 1.0
    if better == "higher":
        lo, hi = -hi, -lo
    z = norm.ppf(0.975)
    centre, se = (lo + hi) / 2, max((hi - lo) / (2 * z), 1e-300)
    if verdict_word == BETTER:
        p = 2 * norm.cdf((centre + margin) / se)
    elif verdict_word == WORSE:
        p = 2 * norm.sf((centre - margin) / se)
    else:
        p = 2 * max(norm.sf((margin - centre) / se), norm.sf((centre + margin) / se))
    return float(min(0.05, p))


def holm_changes(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down procedure over every comparison made: for each p-value, True where the claim it carries
    (p <= alpha, a decided verdict) would not survive the adjustment (it would read 'inconclusive')."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m, survives, stopped = len(p_values), [False] * len(p_values), False
    for rank, i in enumerate(order):
        if not stopped and p_values[i] <= alpha / (m - rank):
            survives[i] = True
        else:
            stopped = True
    return [p <= alpha and not kept for p, kept in zip(p_values, survives)]


def multiplicity_note(record) -> str:
    """The sentence on the number of comparisons (the evaluation's `multiplicity`) and, when Holm's adjustment was
    computed, which verdicts it would change; the verdict words stay the rule's."""
    if record is None:
        return "each comparison is a 95% test, not adjusted for the number made."
    get = record.get if isinstance(record, dict) else lambda k: getattr(record, k)
    out = f"each of the {get('comparisons')} comparisons recorded is a 95% test, not adjusted for the number made"
    holm = get("holm")
    if holm is None:
        return out + " (evaluate.py --holm says which verdicts an adjustment would change)."
    changes = holm["would_change"] if isinstance(holm, dict) else [c.model_dump() for c in holm.would_change]
    if not changes:
        return out + "; Holm's adjustment over all of them would change none."
    shown = "; ".join(f"{c['where']} ({c['verdict']})" for c in changes[:5])
    more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
    return out + (f"; Holm's adjustment over all of them would turn {len(changes)} to inconclusive: {shown}{more} "
                  "(the words above are unadjusted).")
