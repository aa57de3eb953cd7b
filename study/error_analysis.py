"""Phase 5: where and how the probes err, from the test predictions written by evaluate.py.

`analyze(cfg, dataset, options)` is the phase as one function: it returns the typed error summary it wrote
(study/schemas.py `ErrorSummary` / `YesNoErrorSummary`) with its figures; analyze_error_distribution.py parses its
command line into `Options`, calls it and prints. Its steps: `load_predictions` reads one probe's predictions,
`model_summary` / `error_summary` compute the numbers of `results/analysis/<ds>_error_summary.json`, and
`draw_figures` draws the figures named in `FIGURES` (recorded by name in that JSON); the yes/no twins are
`binary_error_summary` and `draw_binary_figures`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study import paths, plots
from study.artifacts import read_npz
from study.config import Config
from study.errors import StudyError
from study.metrics import article_mae, groups_largest_first, mae_by_group, truncation_split
from study.provenance import record
from study.results import evaluation_sha256, read_evaluation
from study.schemas import ErrorSummary, YesNoErrorSummary, write_record
from study.tasks import task as task_of

PREDICTION_ARRAYS = ("ids", "y_true", "y_pred", "languages", "token_counts", "titles", "max_tokens",
                     "dimension_names")
N_WORST = 20
SCORE_BIN_WIDTH = 2.0
FIRST_TOKEN_EDGE = 128  # token bins: [0, 128), [128, 256), [256, 512), ... doubling
FIGURES = {  # name -> caption, in the order of the report
    "error_histograms": "Distribution of the signed errors (prediction − truth) of each model",
    "error_violins": "Distribution of the per-article MAE of each model",
    "pred_vs_true": "Predicted against true scores; the black line is the mean prediction per unit of true score",
    "dimension_mae": "Test MAE per model and dimension",
    "error_vs_tokens": "Per-article MAE against article length in tokens; the dashed line is the model's "
                       "truncation point",
    "error_by_language": "Test MAE per language",
    "bias_by_score_bin": "Mean signed error per true-score bin: do the probes pull extreme scores toward the mean?",
}


def load_predictions(path: Path, dataset: str | None = None) -> dict:
    """One probe's test predictions (written by evaluate.py) as plain Python/numpy values.

    With `dataset`, predictions recorded for another dataset are refused.
    """
    path = Path(path)
    data = read_npz(path, "predictions", "run evaluate.py")
    missing = [k for k in PREDICTION_ARRAYS if k not in data]
    if missing:
        raise StudyError(f"{path}: arrays {missing} are missing; rerun evaluate.py")
    if dataset is not None and "dataset" in data and str(data["dataset"]) != dataset:
        raise StudyError(f"{path} holds predictions for dataset '{data['dataset']}', not '{dataset}'")
    Y, P = data["y_true"].astype(np.float64), data["y_pred"].astype(np.float64)
    names = [str(d) for d in data["dimension_names"]]
    n = len(data["ids"])
    if Y.shape != P.shape or Y.shape != (n, len(names)) or any(len(data[k]) != n for k in
                                                                ("languages", "token_counts", "titles")):
        raise StudyError(f"{path}: arrays disagree in shape (y_true {Y.shape}, y_pred {P.shape}, {n} ids, "
                         f"{len(names)} dimension names); rerun evaluate.py")
    return {"ids": data["ids"], "y_true": Y, "y_pred": P, "languages": data["languages"],
            "token_counts": data["token_counts"].astype(np.int64), "titles": data["titles"],
            "max_tokens": int(data["max_tokens"]), "dimension_names": names}


def score_bin_edges(score_range, width: float = SCORE_BIN_WIDTH) -> np.ndarray:
    """[low, low+width, ..., high]; the last bin is closed on the right."""
    low, high = score_range
    return np.linspace(low, high, int(np.ceil((high - low) / width)) + 1)


def token_bin_edges(max_count: int) -> list[int]:
    """[0, 128, 256, 512, ...] up to the first edge above `max_count`."""
    edges = [0, FIRST_TOKEN_EDGE]
    while edges[-1] <= max_count:
        edges.append(edges[-1] * 2)
    return edges


def model_summary(pred: dict, score_range, n_worst: int = N_WORST) -> dict:
    """Error figures of one model's predictions (see analyze_error_distribution.py for the layout).

    MAE, bias (mean of predicted − true) and |error| quantiles pool every article x dimension
    pair; per-language, token and truncation groups average whole articles; score bins group
    the pairs by their true score. Bins without any article are left out.
    """
    Y, P = pred["y_true"], pred["y_pred"]
    err = P - Y
    art_mae = article_mae(Y, P)
    tokens, max_tokens = pred["token_counts"], int(pred["max_tokens"])
    t_edges = token_bin_edges(int(tokens.max()))
    t_idx = np.searchsorted(t_edges, tokens, side="right") - 1
    s_edges = score_bin_edges(score_range)
    s_idx = np.clip(np.searchsorted(s_edges, Y.ravel(), side="right") - 1, 0, len(s_edges) - 2)
    worst = np.argsort(-art_mae, kind="stable")[:n_worst]
    split = truncation_split(art_mae, tokens, max_tokens)
    return {
        "n": int(len(Y)), "max_tokens": max_tokens, "overall_mae": float(np.abs(err).mean()), "bias": float(err.mean()),
        "abs_error_quantiles": {f"p{q}": float(np.quantile(np.abs(err), q / 100)) for q in (50, 90, 99)},
        "per_dimension_mae": {d: float(np.abs(err[:, i]).mean()) for i, d in enumerate(pred["dimension_names"])},
        "per_language": mae_by_group(Y, P, pred["languages"]),
        "token_bins": [{"low": t_edges[b], "high": t_edges[b + 1], "n": int((t_idx == b).sum()),
                        "mae": float(art_mae[t_idx == b].mean())} for b in range(len(t_edges) - 1) if (t_idx == b).any()],
        "truncated": split["truncated"], "not_truncated": split["not_truncated"],
        "score_bins": [{"low": float(s_edges[b]), "high": float(s_edges[b + 1]), "n": int((s_idx == b).sum()),
                        "mae": float(np.abs(err.ravel()[s_idx == b]).mean()), "bias": float(err.ravel()[s_idx == b].mean())}
                       for b in range(len(s_edges) - 1) if (s_idx == b).any()],
        "worst": [{"id": str(pred["ids"][i]), "language": str(pred["languages"][i]), "title": str(pred["titles"][i]),
                   "mae": float(art_mae[i]), "true": Y[i].tolist(), "pred": P[i].tolist()} for i in worst],
    }


def error_summary(dataset: str, probe: str, predictions: dict[str, dict], score_range) -> dict:
    """The error summary: {dataset, probe, figures (empty: the caller adds its plots), models: {variant: ...}}."""
    return {"task": "regression", "dataset": dataset, "probe": probe, "figures": {},
            "models": {variant: model_summary(pred, score_range) for variant, pred in predictions.items()}}


def draw_figures(cfg: Config, summary: dict, preds: dict[str, dict]) -> dict[str, Path]:
    """Draw every figure of `FIGURES` for the summary's dataset and probe; {name: png}."""
    dataset, probe, stats = summary["dataset"], summary["probe"], summary["models"]
    variants = list(preds)
    dims = preds[variants[0]]["dimension_names"]
    png = {name: paths.error_figure(cfg, dataset, probe, name) for name in FIGURES}
    tag = f"{dataset}, {probe} probe"
    mae = {v: article_mae(p["y_true"], p["y_pred"]) for v, p in preds.items()}
    plots.error_histograms({v: p["y_pred"] - p["y_true"] for v, p in preds.items()}, png["error_histograms"],
                           title=f"Distribution of errors ({tag})")
    plots.error_violins(mae, png["error_violins"], title=f"Per-article MAE by model ({tag})")
    plots.pred_vs_true({v: (p["y_true"], p["y_pred"]) for v, p in preds.items()}, dims, png["pred_vs_true"],
                       score_range=cfg.score_range, title=f"Predicted against true scores ({tag})")
    plots.dimension_heatmap([[stats[v]["per_dimension_mae"][d] for d in dims] for v in variants], variants, dims,
                            png["dimension_mae"], title=f"Test MAE per dimension ({tag})", ylabel="model")
    plots.error_vs_tokens({v: {"token_counts": p["token_counts"], "mae": mae[v], "max_tokens": p["max_tokens"]}
                           for v, p in preds.items()}, png["error_vs_tokens"],
                          title=f"Error against article length ({tag})")
    plots.error_by_language({v: stats[v]["per_language"] for v in variants}, png["error_by_language"],
                            title=f"Test MAE by language ({tag})")
    plots.bias_by_score_bin({v: stats[v]["score_bins"] for v in variants}, png["bias_by_score_bin"],
                            title=f"Bias by true score: do probes pull extremes toward the mean? ({tag})")
    return png


# -- yes/no labels (task: classification) --------------------------------------------------------
BINARY_FIGURES = {"confusion": "Confusion matrix of each model at its threshold chosen on validation (rows: true "
                               "label, columns: predicted label)"}
N_LISTED = 10   # false positives and false negatives listed per model


def binary_model_summary(pred: dict, threshold: float, n_listed: int = N_LISTED) -> dict:
    """One model's yes/no errors at `threshold`: confusion counts, per language, the most confident false
    positives (highest P(yes) among true no) and false negatives (lowest P(yes) among true yes)."""
    y, p = pred["y_true"].ravel().astype(bool), pred["y_pred"].ravel()
    yhat = p >= threshold
    fp, fn = np.flatnonzero(~y & yhat), np.flatnonzero(y & ~yhat)

    def listed(rows):
        return [{"id": str(pred["ids"][i]), "language": str(pred["languages"][i]), "title": str(pred["titles"][i]),
                 "p_yes": float(p[i]), "true": int(y[i])} for i in rows[:n_listed]]

    per_language = {}
    for lang, m in groups_largest_first(pred["languages"]):
        per_language[lang] = {"n": int(m.sum()), "positives": int(y[m].sum()),
                              "false_positives": int((~y & yhat)[m].sum()), "false_negatives": int((y & ~yhat)[m].sum())}
    return {"n": int(len(y)), "threshold": float(threshold), "max_tokens": int(pred["max_tokens"]),
            "confusion": {"tp": int((y & yhat).sum()), "fp": int(len(fp)), "fn": int(len(fn)), "tn": int((~y & ~yhat).sum())},
            "per_language": per_language,
            "false_positives": listed(fp[np.argsort(-p[fp], kind="stable")]),
            "false_negatives": listed(fn[np.argsort(p[fn], kind="stable")])}


def binary_error_summary(dataset: str, probe: str, predictions: dict[str, dict], thresholds: dict[str, float]) -> dict:
    return {"dataset": dataset, "probe": probe, "task": "classification", "figures": {},
            "models": {v: binary_model_summary(pred, thresholds[v]) for v, pred in predictions.items()}}


def draw_binary_figures(cfg: Config, summary: dict) -> dict[str, Path]:
    rows, labels = [], []
    for v, s in summary["models"].items():
        c = s["confusion"]
        rows += [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]
        labels += [f"{v}: true no", f"{v}: true yes"]
    out = paths.error_figure(cfg, summary["dataset"], summary["probe"], "confusion")
    return {"confusion": plots.dimension_heatmap(rows, labels, ["predicted no", "predicted yes"], out,
                                                 title=f"Confusion at the validation threshold ({summary['dataset']}, "
                                                       f"{summary['probe']} probe)", xlabel="", ylabel="",
                                                 cbar_label="test articles", value_fmt="{:.0f}")}


# -- the phase as one function ---------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """What analyze_error_distribution.py's command line chooses (None: the default it documents)."""
    models: tuple[str, ...] | None = None       # --models: variants (default: every evaluated one)
    max_tokens: tuple[int, ...] | None = None   # --max-tokens
    probe: str | None = None                    # --probe (default: the best model's, chosen on validation)


@dataclass(frozen=True)
class Analysed:
    """What phase 5 wrote: the error summary's path, its typed record and its figures by name."""
    path: Path
    record: ErrorSummary | YesNoErrorSummary
    figures: dict[str, Path]


def analyze(cfg: Config, dataset: str, options: Options = Options()) -> Analysed:
    """Phase 5 of the dataset named `dataset`: the errors of one probe's test predictions for every chosen model,
    drawn as figures and written as the error summary (a yes/no dataset: at each model's threshold chosen on
    validation)."""
    evaluation = read_evaluation(cfg, dataset)
    probe = options.probe or evaluation.best.probe
    variants = [v.name for v in cfg.select_variants(options.models, options.max_tokens,
                                                    available=list(evaluation.models))]
    if not variants:
        raise StudyError(f"no evaluated model at --max-tokens {' '.join(map(str, options.max_tokens or ()))}"
                         f" in {paths.evaluation(cfg, dataset)}")
    preds = {v: load_predictions(paths.predictions(cfg, dataset, v, probe), dataset) for v in variants}
    dims = preds[variants[0]]["dimension_names"]
    for v, p in preds.items():
        if p["dimension_names"] != dims:
            raise StudyError(f"predictions of {v} score dimensions {p['dimension_names']}, those of {variants[0]} {dims}")

    if task_of(evaluation.task).has("error_figures"):
        summary = error_summary(dataset, probe, preds, cfg.score_range)
        return _saved(cfg, dataset, ErrorSummary, summary, draw_figures(cfg, summary, preds))
    thresholds = {}
    for v in preds:   # a yes/no dataset: its errors at each model's threshold chosen on validation
        m = evaluation.models[v].probes.get(probe) if v in evaluation.models else None
        if not m:
            raise StudyError(f"the evaluation results hold no {probe} probe for {v}; rerun evaluate.py")
        thresholds[v] = m.threshold
    summary = binary_error_summary(dataset, probe, preds, thresholds)
    return _saved(cfg, dataset, YesNoErrorSummary, summary, draw_binary_figures(cfg, summary))


def _saved(cfg: Config, dataset: str, model, summary: dict, figures: dict[str, Path]) -> Analysed:
    """The error summary with its figures (by name), provenance and the evaluation it was made from, written."""
    summary.update(figures={n: paths.relative(cfg, p) for n, p in figures.items()}, provenance=record(),
                   evaluation_sha256=evaluation_sha256(cfg, dataset))
    out = paths.error_summary(cfg, dataset)
    return Analysed(out, write_record(out, model, summary), figures)
