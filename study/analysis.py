"""Reading results back: the comparison tables of phase 3 and the error analysis of phase 5.

`comparison_*` turn `results/<ds>_evaluation_results.json` into rows, matrices and the
markdown report; `load_predictions` + `error_summary` turn the test predictions written by
evaluate.py into the numbers of `results/analysis/<ds>_error_summary.json`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from study.artifacts import read_npz
from study.errors import StudyError

PREDICTION_ARRAYS = ("ids", "y_true", "y_pred", "languages", "token_counts", "titles", "max_tokens",
                     "dimension_names")
N_WORST = 20
SCORE_BIN_WIDTH = 2.0
FIRST_TOKEN_EDGE = 128  # token bins: [0, 128), [128, 256), [256, 512), ... doubling


# -- phase 3: comparison report ------------------------------------------------------
def probe_results(results: dict) -> list[tuple[str, str, dict]]:
    """(variant, probe, metrics) for every scored probe, in the order of the JSON."""
    return [(variant, probe, m) for variant, entry in results["models"].items()
            for probe, m in entry.items() if isinstance(m, dict) and "overall_mae" in m]


def comparison_rows(results: dict) -> list[dict]:
    """One row a model x probe ({model, probe, mae, ci95, rmse, spearman, val_mae}), best test MAE first."""
    rows = [{"model": v, "probe": p, "mae": m["overall_mae"], "ci95": m["mae_ci95"], "rmse": m["overall_rmse"],
             "spearman": m["overall_spearman"], "val_mae": m["val_mae"]} for v, p, m in probe_results(results)]
    if not rows:
        raise StudyError("the evaluation results hold no scored probe; rerun evaluate.py")
    return sorted(rows, key=lambda r: r["mae"])


def ranked_probes(results: dict) -> list[tuple[str, str, dict]]:
    """(variant, probe, metrics) in the order of `comparison_rows` (best test MAE first)."""
    return [(r["model"], r["probe"], results["models"][r["model"]][r["probe"]]) for r in comparison_rows(results)]


def dimension_matrix(results: dict) -> tuple[np.ndarray, list[str], list[str]]:
    """Per-dimension test MAE: (matrix, row labels 'model / probe', dimension names), best row first."""
    dims = results["dimension_names"]
    ranked = ranked_probes(results)
    matrix = np.array([[m["per_dimension"][d]["mae"] for d in dims] for _, _, m in ranked], dtype=float)
    return matrix, [f"{v} / {p}" for v, p, _ in ranked], list(dims)


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def _gap(mae: float, base: float | None) -> str:
    return "n/a" if base is None else f"{mae - base:+.3f}"


def _table(header: list[str], rows: list[list], right_from: int = 1) -> str:
    """A markdown table; columns from `right_from` on are right-aligned (numbers)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [header, align] + [[str(c) for c in row] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _baseline_position(ci, baseline: float) -> str:
    if ci[1] < baseline:
        return "below the baseline (the whole 95% CI is lower)"
    if ci[0] > baseline:
        return "above the baseline (the whole 95% CI is higher)"
    return "not distinguishable from the baseline (it lies inside the 95% CI)"


def _best_section(results: dict) -> list[str]:
    best, base, bands = results["best"], results.get("baseline_mae"), results["success_bands"]
    out = ["## Best model (chosen on validation MAE)", "",
           f"- **{best['model']} + {best['probe']}**: validation MAE {_f(best['val_mae'])}, "
           f"test MAE {_f(best['test_mae'])} {_ci(best['mae_ci95'])}"]
    if base is None:
        out.append("- No fine-tuned baseline known (config.yaml baseline_mae, evaluate.py --baseline-mae or "
                   "--baseline-predictions): no verdict band")
    else:
        out += [f"- Fine-tuned baseline: test MAE {_f(base, 2)} ({results['baseline_source']})",
                f"- Gap to the baseline: {best['gap_to_baseline']:+.3f}; the best probe is "
                f"{_baseline_position(best['mae_ci95'], base)}",
                f"- Verdict: **{best['band']}** (bands on test MAE: closes the gap <= {bands['closes_gap']:g}, "
                f"partial <= {bands['partial']:g}, no improvement above)"]
        paired = results["models"][best["model"]][best["probe"]].get("vs_baseline")
        if paired:
            out.append(f"- Paired on {paired['n_articles']} matched articles: probe - baseline MAE "
                       f"{paired['mae_difference']:+.3f} {_ci(paired['difference_ci95'])}")
    mean = results.get("mean_predictor")
    if mean:
        out.append(f"- Train-mean predictor (predicts every article as the training mean): test MAE "
                   f"{_f(mean['overall_mae'])} {_ci(mean['mae_ci95'])}")
    return out


def _references(results: dict) -> list[tuple[str, dict]]:
    """The train-mean predictor and the fine-tuned model's scores, where the results hold them."""
    return [(name, results[key]) for name, key in (("train-mean predictor", "mean_predictor"),
                                                   ("fine-tuned baseline", "baseline")) if results.get(key)]


def _overall_section(results: dict) -> list[str]:
    best, base = results["best"], results.get("baseline_mae")
    table = [[i, r["model"], r["probe"] + (" (best on val)" if (r["model"], r["probe"]) == (best["model"], best["probe"])
                                           else ""), _f(r["mae"]), _ci(r["ci95"]), _f(r["rmse"]), _f(r["spearman"]),
              _f(r["val_mae"]), _gap(r["mae"], base)] for i, r in enumerate(comparison_rows(results), 1)]
    table += [["", name, "", _f(ref["overall_mae"]), _ci(ref["mae_ci95"]), _f(ref["overall_rmse"]),
               _f(ref["overall_spearman"]), "", _gap(ref["overall_mae"], base)] for name, ref in _references(results)]
    return ["## Overall results (sorted by test MAE)", "",
            "Spearman: mean of the per-dimension rank correlations. Gap: test MAE minus the baseline's.", "",
            _table(["#", "model", "probe", "test MAE", "95% CI", "RMSE", "Spearman", "val MAE", "gap"], table, 3)]


def _dimension_section(results: dict) -> list[str]:
    matrix, labels, dims = dimension_matrix(results)
    rows = [[label, *(_f(v) for v in row)] for label, row in zip(labels, matrix)]
    rows += [[name, *(_f(ref["per_dimension"][d]["mae"]) for d in dims)] for name, ref in _references(results)]
    return ["## Test MAE per dimension", "", _table(["model / probe", *dims], rows)]


def _language_section(results: dict) -> list[str]:
    ranked = ranked_probes(results)
    counts = results.get("language_counts") or {}
    langs = list(counts) or list(dict.fromkeys(lang for _, _, m in ranked for lang in m["per_language"]))
    rows = [[f"{v} / {p}", *(_f(m["per_language"][lang]["mae"]) if lang in m["per_language"] else "n/a"
                             for lang in langs)] for v, p, m in ranked]
    header = [f"{lang} (n={counts[lang]})" if lang in counts else lang for lang in langs]
    return ["## Test MAE per language", "", _table(["model / probe", *header], rows)]


def _truncation_section(results: dict) -> list[str]:
    rows = []
    for v, p, m in ranked_probes(results):
        t = m["truncation"]
        cut, whole = t["truncated"], t["not_truncated"]
        diff = None if cut["mae"] is None or whole["mae"] is None else f"{cut['mae'] - whole['mae']:+.3f}"
        rows.append([f"{v} / {p}", t["max_tokens"], f"{cut['n']} ({cut['n'] / (cut['n'] + whole['n']):.0%})",
                     _f(cut["mae"]), whole["n"], _f(whole["mae"]), diff or "n/a"])
    return ["## Truncation: articles longer than the model's max tokens", "",
            "Token counts are measured before truncation; a positive difference means cut articles score worse.", "",
            _table(["model / probe", "max tokens", "truncated", "MAE truncated", "whole", "MAE whole", "difference"],
                   rows)]


def comparison_markdown(results: dict, figures: dict[str, str]) -> str:
    """The comparison report: best model vs baseline, overall, per dimension, per language, truncation.

    figures: {caption: path relative to the report}.
    """
    dims = results["dimension_names"]
    out = [f"# Comparison report: {results['dataset']}", "",
           f"{results['n_test']} test articles, {len(dims)} dimensions ({', '.join(dims)}). "
           f"95% CIs: {results['bootstrap_samples']} bootstrap resamples of articles (seed {results['random_seed']}). "
           f"Evaluated {results.get('evaluated_at', 'n/a')}."]
    for section in (_best_section, _overall_section, _dimension_section, _language_section, _truncation_section):
        out += [""] + section(results)
    out += ["", "## Figures"] + [f"\n![{caption}]({path})" for caption, path in figures.items()]
    return "\n".join(out) + "\n"


# -- phase 5: error analysis ---------------------------------------------------------
def load_predictions(path: Path) -> dict:
    """One probe's test predictions (written by evaluate.py) as plain Python/numpy values."""
    path = Path(path)
    data = read_npz(path, "predictions", "run evaluate.py")
    missing = [k for k in PREDICTION_ARRAYS if k not in data]
    if missing:
        raise StudyError(f"{path}: arrays {missing} are missing; rerun evaluate.py")
    Y, P = data["y_true"].astype(np.float64), data["y_pred"].astype(np.float64)
    names = [str(d) for d in data["dimension_names"]]
    n = len(data["ids"])
    if Y.shape != P.shape or Y.shape != (n, len(names)) or any(len(data[k]) != n for k in
                                                                ("languages", "token_counts", "titles")):
        raise StudyError(f"{path}: arrays disagree in shape (y_true {Y.shape}, y_pred {P.shape}, {n} ids, "
                         f"{len(names)} dimension names); rerun evaluate.py")
    return {"ids": data["ids"].astype(str), "y_true": Y, "y_pred": P, "languages": data["languages"].astype(str),
            "token_counts": data["token_counts"].astype(np.int64), "titles": data["titles"].astype(str),
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
    art_mae, art_bias = np.abs(err).mean(axis=1), err.mean(axis=1)
    tokens, max_tokens = pred["token_counts"], int(pred["max_tokens"])

    articles = pd.DataFrame({"language": pred["languages"], "mae": art_mae, "bias": art_bias})
    by_lang = articles.groupby("language", sort=False).agg(n=("mae", "size"), mae=("mae", "mean"), bias=("bias", "mean"))
    by_lang = by_lang.sort_values("n", ascending=False, kind="stable")

    t_edges = token_bin_edges(int(tokens.max()))
    t_idx = np.searchsorted(t_edges, tokens, side="right") - 1
    s_edges = score_bin_edges(score_range)
    s_idx = np.clip(np.searchsorted(s_edges, Y.ravel(), side="right") - 1, 0, len(s_edges) - 2)

    truncated = tokens > max_tokens
    worst = np.argsort(-art_mae, kind="stable")[:n_worst]
    return {
        "n": int(len(Y)), "max_tokens": max_tokens, "overall_mae": float(np.abs(err).mean()), "bias": float(err.mean()),
        "abs_error_quantiles": {f"p{q}": float(np.quantile(np.abs(err), q / 100)) for q in (50, 90, 99)},
        "per_dimension_mae": {d: float(np.abs(err[:, i]).mean()) for i, d in enumerate(pred["dimension_names"])},
        "per_language": {str(lang): {"n": int(r.n), "mae": float(r.mae), "bias": float(r.bias)}
                         for lang, r in by_lang.iterrows()},
        "token_bins": [{"low": t_edges[b], "high": t_edges[b + 1], "n": int((t_idx == b).sum()),
                        "mae": float(art_mae[t_idx == b].mean())} for b in range(len(t_edges) - 1) if (t_idx == b).any()],
        **{name: {"n": int(mask.sum()), "mae": float(art_mae[mask].mean()) if mask.any() else None}
           for name, mask in (("truncated", truncated), ("not_truncated", ~truncated))},
        "score_bins": [{"low": float(s_edges[b]), "high": float(s_edges[b + 1]), "n": int((s_idx == b).sum()),
                        "mae": float(np.abs(err.ravel()[s_idx == b]).mean()), "bias": float(err.ravel()[s_idx == b].mean())}
                       for b in range(len(s_edges) - 1) if (s_idx == b).any()],
        "worst": [{"id": str(pred["ids"][i]), "language": str(pred["languages"][i]), "title": str(pred["titles"][i]),
                   "mae": float(art_mae[i]), "true": Y[i].tolist(), "pred": P[i].tolist()} for i in worst],
    }


def error_summary(dataset: str, probe: str, predictions: dict[str, dict], score_range) -> dict:
    """The error summary: {dataset, probe, figures (empty: the caller adds its plots), models: {variant: ...}}."""
    return {"dataset": dataset, "probe": probe, "figures": {},
            "models": {variant: model_summary(pred, score_range) for variant, pred in predictions.items()}}
