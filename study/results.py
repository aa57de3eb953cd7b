"""The one reader of the evaluation JSON, and the one place that chooses on validation.

Layout written by evaluate.py (`results/<ds>_evaluation_results.json`):

    {"dataset", "n_test", "dimension_names", "baseline_mae", ..., "mean_predictor", "baseline"?,
     "models": {variant: {"model", "embedding_dim", "max_tokens", "truncated_fraction",
                          "mean_token_count", "chosen_probe", "chunked"?, "chunks"?, "parts"?,
                          "probes": {"ridge": {...}, "mlp": {...}, "lightgbm": {...}}}},
     "best": {"model", "probe", "val_mae", "test_mae", "mae_ci95", ...}}

A chunked variant (`chunked`, `chunks`: window, overlap, max_windows, token_capacity,
windows_per_article, capped_fraction) counts as truncated only the articles its windows do not
cover; its probes carry `vs_truncated` {"truncated": twin, "all", "cut"}, paired differences
(chunked minus truncated per-article MAE: `probe_mae` is the chunked one, `baseline_mae` the
truncated one) over all test articles and over those the twin cut. A concatenation (`parts`)
has its probes' `vs_parts` {part: paired difference, concatenation minus part}; it counts as
truncated only the articles that no part covers whole. Yes/no datasets have neither comparison.

A probe trained with train_probes.py --train-fractions also holds its learning curve, by
training articles, the full-data probe last (fraction 1.0):

    "probes": {"ridge": {..., "learning_curve": [
        {"fraction", "n_train", "test_mae", "mae_ci95", "val_mae", "file",
         "vs_previous"?: {"n_train" (of the point before), "mae_difference" (this minus that,
                          per-article MAE on the same test articles), "difference_ci95", ...}}, ...]}}

Read it with `learning_curves`.

A yes/no dataset (`"task": "classification"`; absent means regression) has the same frame with
other figures:

    {"dataset", "task": "classification", "n_test", "dimension_names": [label], "positive_rate",
     "language_counts", "baseline_f1", "baseline_source", "always_yes": {f1, f1_ci95, precision, ...},
     "models": {variant: {..., "chosen_probe",
                          "probes": {"logistic"|"mlp"|"lightgbm": {
                              "val_log_loss", "val_f1", "threshold" (chosen on validation: max val F1),
                              "f1", "precision", "recall", "roc_auc", each with "<name>_ci95",
                              "accuracy", "confusion": {tp, fp, fn, tn}, "n", "positives",
                              "per_language": {lang: {n, positives, f1, precision, recall}},
                              "truncation": {max_tokens, truncated: {n, positives, f1}, not_truncated: ...},
                              "selected", "train_seconds", "inference_ms_per_article", "predictions_files"}}}},
     "best": {"model", "probe", "val_log_loss", "threshold", "test_f1", "f1_ci95", "gap_to_baseline"?, ...}}

and none of the regression-only parts (MAE, screening, article scores, bands, sweep differences).

"Chosen" always means one thing: the lowest validation score of `validation_score` (validation
MAE for scores, validation log-loss for yes/no labels; lower is better for both). `chosen_probe` is
a model's best probe; `best` is the best model + probe over all models. Test data never chooses.
"""
from __future__ import annotations

from study import paths
from study.artifacts import read_json
from study.config import Config
from study.data import file_sha256
from study.errors import StudyError
from study.metrics import band_limits, success_band
from study.schemas import Evaluation, model_for, validate
from study.tasks import SCORES, YES_NO


PROBE_ORDER = ("ridge", "logistic", "mlp", "lightgbm")   # ties go to the earlier probe


def validation_score(m: dict) -> float:
    """What chooses on validation, lower is better (study/tasks.py `validation_field`: the validation MAE of a
    score probe, the validation log-loss of a yes/no probe). The one ranking rule of the study."""
    field = SCORES.validation_field if SCORES.validation_field in m else YES_NO.validation_field
    return m[field]


def _order(p: str) -> int:
    return PROBE_ORDER.index(p) if p in PROBE_ORDER else len(PROBE_ORDER)


def chosen_probe(probes: dict[str, dict]) -> str:
    """The probe with the lowest validation score (ties: the first in ridge/logistic, mlp, lightgbm order)."""
    return sorted(probes, key=lambda p: (validation_score(probes[p]), _order(p)))[0]


def choose_best(models: dict[str, dict]) -> tuple[str, str]:
    """(variant, probe) with the lowest validation score over every model's chosen probe."""
    return min(((v, e["chosen_probe"]) for v, e in models.items()),
               key=lambda vp: validation_score(models[vp[0]]["probes"][vp[1]]))


def best_summary(models: dict[str, dict], baseline_mae: float | None, margins: dict) -> dict:
    """The evaluation JSON's `best`: the model + probe chosen on validation, its test figures and band."""
    variant, probe = choose_best(models)
    m = models[variant]["probes"][probe]
    out = {"model": variant, "probe": probe, "val_mae": m["val_mae"], "test_mae": m["overall_mae"],
           "mae_ci95": m["mae_ci95"], "chosen_by": SCORES.validation_label}
    if baseline_mae:   # with the fine-tuned predictions: on the articles both sides scored
        paired = m.get("vs_baseline")
        mae, base = (paired["probe_mae"], paired["baseline_mae"]) if paired else (m["overall_mae"], baseline_mae)
        out["gap_to_baseline"] = mae - base
        out["band"] = success_band(mae, base, margins)
        out["band_limits"] = list(band_limits(baseline_mae, margins))
    return out


def best_summary_binary(models: dict[str, dict], baseline_f1: float | None) -> dict:
    """`best` of a yes/no evaluation: the model + probe chosen on validation log-loss and its test F1 (and
    precision, recall, ROC AUC) at its validation threshold; against the fine-tuned classifier's F1 when known:
    gap (probe − baseline, positive = the probe is better) and where the baseline lies against the F1's CI."""
    variant, probe = choose_best(models)
    m = models[variant]["probes"][probe]
    out = {"model": variant, "probe": probe, "val_log_loss": m["val_log_loss"], "val_f1": m["val_f1"],
           "threshold": m["threshold"], "chosen_by": YES_NO.validation_label,
           **{f"test_{k}": m[k] for k in ("f1", "precision", "recall", "roc_auc")},
           **{f"{k}_ci95": m[f"{k}_ci95"] for k in ("f1", "precision", "recall", "roc_auc")}}
    if baseline_f1 and m["f1"] is not None:   # F1 is undefined (None) only without any yes, true or predicted
        out["gap_to_baseline"] = m["f1"] - baseline_f1
        lo, hi = m["f1_ci95"]
        out["against_baseline"] = ("above the baseline (the whole 95% CI is higher)" if lo is not None and lo > baseline_f1
                                   else "below the baseline (the whole 95% CI is lower)" if hi is not None
                                   and hi < baseline_f1 else "not distinguishable from the baseline (it lies inside "
                                                             "the 95% CI)")
    return out


def task(ev) -> str:
    """'regression' (0-10 scores) or 'classification' (yes/no labels) of an evaluation (model or dict)."""
    return ev.task if not isinstance(ev, dict) else ev.get("task", "regression")


def evaluation_sha256(cfg: Config, dataset: str) -> str:
    """sha256 of the evaluation JSON as it is now: what a downstream artifact records it was made from."""
    return file_sha256(paths.evaluation(cfg, dataset))


def read_evaluation(cfg: Config, dataset: str) -> Evaluation:
    """The evaluation JSON of `dataset` as its typed model (study/schemas.py), checked for its dataset name."""
    path = paths.evaluation(cfg, dataset)
    remedy = "rerun evaluate.py"
    data = read_json(path, "evaluation results (run evaluate.py first)")
    ev = validate(model_for("evaluation", data), data, str(path), remedy)
    if ev.dataset != dataset:
        raise StudyError(f"{path} holds the results of dataset '{ev.dataset}', not '{dataset}'")
    for variant, entry in ev.models.items():
        if entry.chosen_probe not in entry.probes:
            raise StudyError(f"{path}: model '{variant}' has no valid 'chosen_probe'; {remedy}")
    if ev.best.probe not in (ev.models.get(ev.best.model).probes if ev.best.model in ev.models else {}):
        raise StudyError(f"{path}: 'best' names no evaluated model and probe; {remedy}")
    return ev


def sweep_groups(models: dict) -> dict[str, list[str]]:
    """{config model: its variants} for the models evaluated at several max tokens: a truncation sweep. Chunked
    and side-by-side variants are no points of a sweep."""
    groups: dict[str, list[str]] = {}
    for name, entry in models.items():
        if not entry.get("chunked") and not entry.get("parts"):
            groups.setdefault(entry.get("model", name), []).append(name)
    return {k: g for k, g in groups.items() if len(g) > 1}


def probe_entries(ev: dict) -> list[tuple[str, str, dict]]:
    """(variant, probe, metrics) for every scored probe, in the order of the JSON."""
    return [(v, p, m) for v, entry in ev["models"].items() for p, m in entry["probes"].items()]


def ranked(ev: dict) -> list[tuple[str, str, dict]]:
    """`probe_entries` by test result, best first: lowest test MAE, or (yes/no labels) highest test F1."""
    if task(ev) == "classification":
        return sorted(probe_entries(ev), key=lambda e: -(e[2]["f1"] if e[2]["f1"] is not None else -1))
    return sorted(probe_entries(ev), key=lambda e: e[2]["overall_mae"])


def chosen(ev: dict) -> list[tuple[str, str, dict]]:
    """(variant, chosen probe, its metrics) for every model."""
    return [(v, e["chosen_probe"], e["probes"][e["chosen_probe"]]) for v, e in ev["models"].items()]


def best(ev: dict) -> tuple[str, str, dict]:
    """(variant, probe, metrics) of the best model + probe chosen on validation."""
    b = ev["best"]
    return b["model"], b["probe"], ev["models"][b["model"]]["probes"][b["probe"]]



def learning_curves(ev: dict) -> list[tuple[str, str, list[dict]]]:
    """(variant, probe, points by training articles, the full-data probe last) for every probe with a
    learning curve (train_probes.py --train-fractions), in the order of the JSON; [] when none has one."""
    return [(v, p, m["learning_curve"]) for v, p, m in probe_entries(ev) if m.get("learning_curve")]
