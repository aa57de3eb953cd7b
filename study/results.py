"""The one reader of the evaluation JSON, and the one place that chooses on validation.

The layout of `results/<ds>_evaluation_results.json` is its typed model in study/schemas.py
(`ScoreEvaluation` for scores, `YesNoEvaluation` for yes/no labels); `read_evaluation` returns
it, checked for its dataset name and its choices. evaluate.py builds the file with the functions
below while it is still a dict.

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
from study.metrics import band_limits
from study.schemas import Evaluation, model_for, validate
from study.tasks import ARM, SCORES, YES_NO
from study.verdicts import band_phrase, bands_spanned


PROBE_ORDER = ("ridge", "logistic", "mlp", "lightgbm")   # ties go to the earlier probe


def validation_score(m: dict) -> float:
    """What chooses on validation, lower is better (study/tasks.py `validation_field`: the validation MAE of a
    score probe, the validation log-loss of a yes/no probe). The one ranking rule of the study."""
    field = SCORES.validation_field if SCORES.validation_field in m else YES_NO.validation_field
    return m[field]


def _order(p: str) -> int:
    return PROBE_ORDER.index(p) if p in PROBE_ORDER else len(PROBE_ORDER)


def chosen_probe(probes: dict[str, dict]) -> str:
    """The probe with the lowest validation score (ties: the first in ridge/logistic, mlp, lightgbm order). The
    fine-tuned encoder (probe kind `finetuned`, study/finetune.py) is another arm, never a frozen model's choice,
    unless it is all there is."""
    frozen = [p for p in probes if p != ARM] or list(probes)
    return sorted(frozen, key=lambda p: (validation_score(probes[p]), _order(p)))[0]


def choose_best(models: dict[str, dict]) -> tuple[str, str]:
    """(variant, probe) with the lowest validation score over every model's chosen probe, among the models that read
    every test language (study/languages.py: a control is never the best, unless every model is one)."""
    valid = {v: e for v, e in models.items() if not e.get("control")} or models
    return min(((v, e["chosen_probe"]) for v, e in valid.items()),
               key=lambda vp: validation_score(models[vp[0]]["probes"][vp[1]]))


def band_interval(m: dict, baseline_mae: float) -> tuple[tuple, float]:
    """(the 95% CI of the test MAE the bands are read on, the baseline MAE it is read against): with the fine-tuned
    model's predictions the baseline's MAE on the articles both scored plus the paired difference's CI, else the
    probe's own CI against the single baseline MAE. The one interval of every band reading (study/verdicts.py
    `bands_spanned`)."""
    paired = m.get("vs_baseline")
    if paired:
        lo, hi = paired["difference_ci95"]
        base = paired["baseline_mae"]
        return (base + lo, base + hi), base
    return tuple(m["mae_ci95"]), baseline_mae


def best_summary(models: dict[str, dict], baseline_mae: float | None, margins: dict) -> dict:
    """The evaluation JSON's `best`: the model + probe chosen on validation, its test figures and band: the bands
    the whole 95% CI spans in words (`band_phrase`, 'partial, possibly closes the gap'), never the band of the point
    estimate alone."""
    variant, probe = choose_best(models)
    m = models[variant]["probes"][probe]
    out = {"model": variant, "probe": probe, "val_mae": m["val_mae"], "test_mae": m["overall_mae"],
           "mae_ci95": m["mae_ci95"], "chosen_by": SCORES.validation_label,
           "control": bool(models[variant].get("control"))}
    if baseline_mae:   # with the fine-tuned predictions: on the articles both sides scored
        paired = m.get("vs_baseline")
        mae, base = (paired["probe_mae"], paired["baseline_mae"]) if paired else (m["overall_mae"], baseline_mae)
        out["gap_to_baseline"] = mae - base
        ci, base = band_interval(m, baseline_mae)
        out["band"] = band_phrase(bands_spanned(ci, base, margins))
        out["band_limits"] = list(band_limits(baseline_mae, margins))
    return out


def best_line(ev) -> str:
    """The console's line of the best model + probe of a score evaluation (evaluate.py, compare_results.py): test
    MAE with its CI and the band reading of the whole CI, the one page 1 and summary.md show."""
    b = ev.best
    return (f"best on validation: {b.model} + {b.probe}: test MAE {b.test_mae:.4f} "
            f"[{b.mae_ci95[0]:.4f}, {b.mae_ci95[1]:.4f}]"
            + (f"; fine-tuned baseline {ev.baseline_mae:.2f} ({ev.baseline_source}): {b.band} (bands of the whole "
               "95% CI)" if ev.baseline_mae else
               "; no fine-tuned baseline known (config baseline_mae, --baseline-mae or --baseline-predictions)"))


def best_summary_binary(models: dict[str, dict], baseline_f1: float | None) -> dict:
    """`best` of a yes/no evaluation: the model + probe chosen on validation log-loss and its test F1 (and
    precision, recall, ROC AUC) at its validation threshold; against the fine-tuned classifier's F1 when known:
    gap (probe − baseline, positive = the probe is better) and where the baseline lies against the F1's CI."""
    variant, probe = choose_best(models)
    m = models[variant]["probes"][probe]
    out = {"model": variant, "probe": probe, "val_log_loss": m["val_log_loss"], "val_f1": m["val_f1"],
           "threshold": m["threshold"], "chosen_by": YES_NO.validation_label,
           "control": bool(models[variant].get("control")),
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
    """{config model: its variants} for the models evaluated at several max tokens: a truncation sweep. Chunked,
    side-by-side, layer and teacher variants are no points of a sweep."""
    groups: dict[str, list[str]] = {}
    for name, entry in models.items():
        if not entry.get("chunked") and not entry.get("parts") and entry.get("layer") is None and not entry.get("teacher"):
            groups.setdefault(entry.get("model", name), []).append(name)
    return {k: g for k, g in groups.items() if len(g) > 1}


def layer_groups(models: dict) -> dict[str, list[str]]:
    """{the model at its max tokens: its layer variants by layer} where one model was evaluated at two or more
    hidden layers (at one max tokens): a layer sweep."""
    groups: dict[str, list[str]] = {}
    for name, entry in models.items():
        if entry.get("layer") is not None and not entry.get("teacher"):
            groups.setdefault(name.rsplit("-L", 1)[0], []).append(name)
    return {k: sorted(g, key=lambda v: models[v]["layer"]) for k, g in groups.items() if len(g) > 1}










