"""Builders of schema-valid result records for tests (study/schemas.py).

Each builder takes the numbers a test is about as keywords and fills every other required field
with a plausible constant, so that a hand-built record passes the strict models and the test
still states only what it checks. They return plain dicts (what a JSON file holds); `as_model`
validates one into its typed model. Optional blocks (vs_baseline, learning_curve, baseline, ...)
stay absent unless a test passes them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from study.schemas import SCHEMA_VERSION, model_for, validate

CREATED = "2026-01-01T00:00:00+00:00"
PROVENANCE = {"code": {"commit": "test"}, "host": "test-host", "device": None, "versions": {"python": "3.11"},
              "created_at": CREATED}


def _dims(names, mae, rmse=None, spearman=0.5) -> dict:
    return {d: {"mae": mae, "rmse": mae * 1.3 if rmse is None else rmse, "spearman": spearman} for d in names}


def mean_predictor(overall_mae=1.5, dims=("score",), **kw) -> dict:
    """`MeanPredictor`: the train-mean reference with its article scores and majority tier."""
    return scores(overall_mae, dims, **{"overall_spearman": None, "article_scores": article_scores(),
                                        "majority_tier": {"tier": "low", "accuracy": 0.6,
                                                          "accuracy_exact_ci95": [0.45, 0.74]}, **kw})


def scores(overall_mae=1.0, dims=("score",), **kw) -> dict:
    """`Scores`: overall and per-dimension figures (the mean predictor, the fine-tuned baseline)."""
    out = {"overall_mae": overall_mae, "overall_rmse": overall_mae * 1.3, "overall_spearman": 0.5,
           "per_dimension": _dims(dims, overall_mae), "mae_ci95": [overall_mae - 0.05, overall_mae + 0.05]}
    return {**out, **kw}


def article_scores() -> dict:
    return {"n": 50, "weighted_mae": 0.7, "weighted_mae_ci95": [0.6, 0.8], "tier_accuracy": 0.8,
            "tier_accuracy_ci95": [0.7, 0.9], "within_0.5": 0.5, "within_0.5_ci95": [0.4, 0.6],
            "within_1.0": 0.8, "within_1.0_ci95": [0.7, 0.9], "tier_confusion": [[10, 1, 0], [1, 10, 1], [0, 1, 10]],
            "tier_accuracy_exact_ci95": [0.66, 0.9], "within_0.5_exact_ci95": [0.36, 0.64],
            "within_1.0_exact_ci95": [0.66, 0.9]}


def paired(difference=-0.1, ci=(-0.15, -0.05), verdict="better", **kw) -> dict:
    """A `PairedDifference` read by the comparison rule."""
    out = {"n_articles": 50, "probe_mae": 1.0 + difference, "baseline_mae": 1.0, "mae_difference": difference,
           "difference_ci95": list(ci), "verdict": verdict, "equivalence_margin": 0.02}
    return {**out, **kw}


def screening(thresholds=()) -> dict:
    return {"thresholds": list(thresholds), "curve": {"threshold": [], "skip_share": [], "recall": []}}


def screening_threshold(target, guaranteed_skip, plug_in_skip, certified=True) -> dict:
    """A `ScreeningThreshold`: the plug-in threshold and the guaranteed one (or, not certified, why not) with the
    test skip shares given."""
    test = lambda skip: {"n": 100, "n_skipped": int(100 * skip), "skip_share": skip, "recall": 0.99,  # noqa: E731
                         "skipped_mae": 0.5, "n_relevant": 60, "n_kept_relevant": 59, "skip_share_ci95": [0, 1],
                         "skip_share_exact_ci95": [0, 1], "recall_ci95": [0.9, 1], "recall_exact_ci95": [0.9, 1],
                         "skipped_mae_ci95": [0.4, 0.6], "recall_below_target": False, "skipped_too_few": False}
    val = {"n": 80, "n_skipped": 10, "skip_share": 0.125, "recall": 0.99, "skipped_mae": 0.5}
    g = {"threshold": 2.5 if certified else None, "confidence": 0.95, "n_relevant": 60,
         "misses_allowed": 0 if certified else None, "articles_needed": 59 if certified else 299,
         "certified": certified, "note": None if certified else "cannot be certified with 60 articles (needs 299)"}
    if certified:
        g.update(val=val, test=test(guaranteed_skip))
    return {"target_recall": target, "threshold": 3.0, "val": val, "test": test(plug_in_skip), "n_relevant_val": 60,
            "guaranteed": g}


def score_probe(overall_mae=1.0, val_mae=None, dims=("score",), **kw) -> dict:
    """One `ScoreProbe`: pass what the test checks (overall_mae, mae_ci95, val_mae, per_dimension, ...)."""
    out = {**scores(overall_mae, dims),
           "val_mae": overall_mae if val_mae is None else val_mae,
           "per_language": {"en": {"n": 50, "mae": overall_mae}},
           "truncation": {"max_tokens": 128, "truncated": {"n": 0, "mae": None},
                          "not_truncated": {"n": 50, "mae": overall_mae}},
           "article_scores": article_scores(), "screening": screening(), "vs_mean_predictor": paired(),
           "vs_median_predictor": paired(),
           "selected": {}, "inference_ms_per_article": 0.05, "train_seconds": 0.1,
           "predictions_files": {"test": "predictions/x_test.npz", "val": "predictions/x_val.npz"}}
    return {**out, **kw}


def model_entry(name, probes: dict, chosen=None, **kw) -> dict:
    """One model's `ScoreModelEntry` / `YesNoModelEntry`; `chosen` defaults to the first probe."""
    out = {"model": name, "model_name": f"org/{name}", "role": "", "embedding_dim": 8, "max_tokens": 128,
           "truncated_fraction": 0.0, "mean_token_count": 100.0, "embedding_cost": {"train": None, "test": None},
           "chosen_probe": chosen or next(iter(probes)), "probes": probes}
    return {**out, **kw}


def score_best(model, probe, probe_dict: dict, **kw) -> dict:
    out = {"model": model, "probe": probe, "val_mae": probe_dict["val_mae"], "test_mae": probe_dict["overall_mae"],
           "mae_ci95": probe_dict["mae_ci95"], "chosen_by": "validation MAE",
           "verdicts": {"candidates": 1, "vs_median_predictor": "better", "vs_mean_predictor": "better",
                        "null_result": None}}
    return {**out, **kw}


def screening_setup(**kw) -> dict:
    out = {"weights": {"score": 1.0}, "tiers": {"medium": 4.0, "high": 7.0}, "recall_targets": [0.95, 0.99],
           "thresholds_chosen_on": "val", "confidence": 0.95, "threshold_rule": "guaranteed",
           "fine_tuned_ms_per_article": [20.0, 50.0],
           "fine_tuned_training_hours": [1.0, 2.0]}
    return {**out, **kw}


def _common(dataset, dims, n_test, config, **kw) -> dict:
    return {"schema_version": SCHEMA_VERSION, "dataset": dataset, "random_seed": 42, "bootstrap_samples": 200,
            "n_test": n_test, "dimension_names": list(dims), "language_counts": {"en": n_test},
            "evaluated_at": CREATED, "provenance": dict(PROVENANCE), "config": {**repository_config(), **(config or {})}}


def repository_config() -> dict:
    """The repository's config.yaml as evaluate.py records it (`config`): what a record's `config` holds unless a
    test gives its own settings."""
    return config_dump(Path(__file__).resolve().parent.parent / "config.yaml")


def score_evaluation(models: dict, best: dict | None = None, dataset="toy", dims=("score",), n_test=50,
                     config: dict | None = None, **kw) -> dict:
    """A `ScoreEvaluation`. `best` defaults to the first model's chosen probe; `config`: settings of the Config dump
    the evaluation ran with (report.py reads score range and model notes from it), over the repository's."""
    if best is None:
        v = next(iter(models))
        p = models[v]["chosen_probe"]
        best = score_best(v, p, models[v]["probes"][p])
    out = {**_common(dataset, dims, n_test, config), "task": "regression",
           "success_bands": {"closes_gap": 0.07, "partial": 0.17},
           "mean_predictor": mean_predictor(1.5, dims), "median_predictor": scores(1.45, dims, overall_spearman=None),
           "baseline_mae": None, "baseline_source": None,
           "screening_setup": screening_setup(), "models": models, "best": best}
    return {**out, **kw}


@lru_cache(maxsize=None)
def _config_dump(config_path: str) -> dict:
    from study.config import load_config
    return load_config(config_path).model_dump(mode="json")


def config_dump(config_path) -> dict:
    """The Config at `config_path` as evaluate.py records it in the evaluation (`config`)."""
    import copy
    return copy.deepcopy(_config_dump(str(config_path)))


def as_model(data: dict, kind: str = "evaluation"):
    """`data` validated into its model (evaluation / error summary by task)."""
    return validate(model_for(kind, data), data, "test record", "fix the test")


# -- other artifacts --------------------------------------------------------------------------
def trained_probe(model, probe, **kw) -> dict:
    fp = {"source": "sentence-transformers", "model_name": f"org/{model}", "max_tokens": 128, "prefix": "",
          "dtype": "float32", "pooling": "mean", "split": "train", "data_sha256": "ab" * 32}
    out = {"dataset": "toy", "model": model, "variant": model, "probe": probe, "dimension_names": ["score"],
           "embedding": {}, "data_sha256": {"train": "ab" * 32, "val": "ab" * 32}, "embedding_fingerprint": fp,
           "hyperparameters": {}, "selected": {}, "val_mae": 1.0, "train_seconds": 0.1, "n_train": 200, "n_val": 60,
           "embedding_dim": 8, "random_seed": 42, "trained_at": CREATED, "provenance": dict(PROVENANCE),
           "file": f"toy_{model}_{probe}.pkl", "sha256": "cd" * 32}
    return {**out, **kw}


def training_summary(models: dict, dataset="toy") -> dict:
    """`models`: {model: {probe: trained_probe(...)}}."""
    return {"schema_version": SCHEMA_VERSION, "dataset": dataset, "models": models}


def timed_model(articles_per_s=100.0, dtype="float32", batch_size=16, peak_memory_mb=500.0, **kw) -> dict:
    """One `TimedModel` of the benchmark (study/benchmark.py benchmark_model): pass what the test reads."""
    out = {"random_weights": False, "load_seconds_cold": 1.0, "load_seconds_warm": 0.5, "load_time_meaningful": True,
           "location": "org/x", "n_params_non_embedding": 1000, "n_params_total": 2000, "layers": 2, "hidden": 32,
           "model_type": "bert", "dtype": dtype, "batch_size": batch_size, "token_budget": None, "max_tokens": 128,
           "n_articles": 64, "n_tokens": 6400, "mean_tokens": 100.0, "truncated_fraction": 0.1,
           "articles_per_s": articles_per_s, "tokens_per_s": 100.0 * articles_per_s, "run_seconds": [1.0, 1.0],
           "tflops": 0.1, "peak_tflops": None, "share_of_peak": None, "peak_memory_mb": peak_memory_mb,
           "memory_kind": "rss", "tokenize_seconds": 0.01, "tokenize_share": 0.01, "packed": False, "n_batches": 4,
           "padded_tokens": 8000, "padding_overhead": 0.25, "oom_retries": 0, "reference": None,
           "speedup_vs_reference": None}
    return {**out, **kw}


def stage1_cost(ms_per_article=2.0, fine_tuned_ms=(20.0, 50.0), probe_ms=0.01) -> dict:
    """One `EndToEnd` entry as study/benchmark.py end_to_end computes it."""
    return {"ms_per_article": ms_per_article, "embedding_ms_per_article": ms_per_article - probe_ms,
            "probe_ms_per_article": probe_ms, "speedup_vs_fine_tuned": [f / ms_per_article for f in fine_tuned_ms]}


def benchmark_record(models: dict, end_to_end: dict, dataset="toy", **kw) -> dict:
    out = {"schema_version": SCHEMA_VERSION, "dataset": dataset, "device": "cpu", "device_name": None,
           "versions": {"python": "3.11"}, "provenance": dict(PROVENANCE), "settings": {},
           "fine_tuned_ms_per_article": [20.0, 50.0], "models": models, "probes": {}, "probes_skipped": {},
           "end_to_end": end_to_end}
    return {**out, **kw}


def error_model(**kw) -> dict:
    out = {"n": 50, "max_tokens": 128, "overall_mae": 0.7, "bias": 0.0,
           "abs_error_quantiles": {"p50": 0.5, "p90": 1.0, "p99": 1.5},
           "per_dimension_mae": {"score": 0.7}, "per_language": {}, "token_bins": [],
           "truncated": {"n": 0, "mae": None}, "not_truncated": {"n": 50, "mae": 0.7}, "score_bins": [], "worst": []}
    return {**out, **kw}


def error_summary(models: dict, figures: dict, dataset="toy", probe="ridge", **kw) -> dict:
    out = {"schema_version": SCHEMA_VERSION, "task": "regression", "dataset": dataset, "probe": probe,
           "figures": figures, "models": models, "provenance": dict(PROVENANCE)}
    return {**out, **kw}


def comparison_record(figures: dict, dataset="toy", **kw) -> dict:
    out = {"schema_version": SCHEMA_VERSION, "dataset": dataset, "report": f"{dataset}_comparison_report.md",
           "figures": figures, "provenance": dict(PROVENANCE)}
    return {**out, **kw}
