"""Phase 3: score every trained probe on the test split and compare with the fine-tuned model.

    python evaluate.py --dataset uplifting_v5
    python evaluate.py --dataset uplifting_v5 --baseline-predictions filters/uplifting/v5/benchmarks/test_set_predictions.json
    python evaluate.py --data-dir ../shared/data/sustainability_real --baseline-mae 0.71

Reads the probes listed in results/<dataset>_training_summary.json and the test embeddings.
Writes results/<dataset>_evaluation_results.json (MAE, RMSE, Spearman overall and per
dimension, MAE per language and for truncated vs whole articles, 95% bootstrap CIs, the best
model chosen on validation MAE and its success band) and each probe's test predictions
under results/predictions/ for the error analysis.
"""
import argparse
import time
from datetime import datetime, timezone

import numpy as np

from study import cli
from study.artifacts import load_pickle, read_json, save_npz, write_json
from study.cache import MODEL_KEYS, load_checked, mismatch, predictions_path, probe_path, split_variant
from study.config import load_config
from study.data import load_baseline_predictions, load_split, resolve_dataset
from study.errors import StudyError
from study.metrics import article_mae, bootstrap_ci, mae_by_group, score, success_band
from study.probes import PROBES


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser, models=False)
    parser.add_argument("--models", nargs="+", help="model variants to score (default: every trained one)")
    parser.add_argument("--baseline-predictions", help="the fine-tuned model's test_set_predictions.json")
    parser.add_argument("--baseline-mae", type=float, help="the fine-tuned model's test MAE when config has none")
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    summary_path = cfg.results_path / f"{dataset.name}_training_summary.json"
    trained = read_json(summary_path, "training summary (run train_probes.py first)").get("models", {})
    variants = args.models or list(trained)
    for v in variants:
        if v not in trained:
            raise StudyError(f"no probes trained for '{v}' in {summary_path} (trained: {', '.join(trained)})")
    seed, n_boot = cfg.random_seed, cfg.bootstrap_samples

    baseline_mae, baseline_source = dataset.baseline_mae, "config.yaml baseline_mae"
    if args.baseline_mae is not None:
        baseline_mae, baseline_source = args.baseline_mae, "--baseline-mae"
    baseline = None
    if args.baseline_predictions:
        test_split = load_split(dataset, "test", cfg.score_range)
        rows, base_pred = load_baseline_predictions(args.baseline_predictions, test_split)
        base_scores = score(test_split.labels[rows], base_pred, test_split.dimension_names)
        base_err = article_mae(test_split.labels[rows], base_pred)
        baseline = {**base_scores, "n_articles": int(len(rows)), "source": str(args.baseline_predictions),
                    "mae_ci95": bootstrap_ci(base_err, n_boot, seed)}
        baseline_mae, baseline_source = base_scores["overall_mae"], f"predictions file {args.baseline_predictions}"
        print(f"fine-tuned baseline on {len(rows)} matched test articles: MAE {baseline_mae:.4f}")

    results = {"dataset": dataset.name, "baseline_mae": baseline_mae, "baseline_source": baseline_source,
               "random_seed": seed, "bootstrap_samples": n_boot, "success_bands": cfg.success_bands.model_dump(),
               "models": {}}
    if baseline:
        results["baseline"] = baseline
    reference = None
    for variant in variants:
        model, max_tokens = split_variant(cfg, variant)
        test = load_checked(cfg, dataset, model, max_tokens, "test")
        Y, X, names = test["labels"], test["embeddings"], test["dimension_names"]
        if reference is None:  # the same test set for every model, and a train-mean reference
            reference = test
            train_mean = load_checked(cfg, dataset, model, max_tokens, "train")["labels"].mean(axis=0)
            mean_pred = np.broadcast_to(train_mean, Y.shape)
            results.update(n_test=int(len(Y)), dimension_names=names,
                           language_counts={k: v["n"] for k, v in mae_by_group(Y, mean_pred, test["languages"]).items()},
                           mean_predictor={**score(Y, mean_pred, names),
                                           "mae_ci95": bootstrap_ci(article_mae(Y, mean_pred), n_boot, seed)})
        elif not np.array_equal(test["ids"], reference["ids"]):
            raise StudyError(f"test embeddings of {variant} hold other articles than those of the first model")
        truncated = test["token_counts"] > max_tokens
        entry = {"embedding_dim": int(X.shape[1]), "max_tokens": max_tokens,
                 "truncated_fraction": float(truncated.mean()), "mean_token_count": float(test["token_counts"].mean())}
        for kind in [p for p in PROBES if p in trained[variant]]:
            path = probe_path(cfg, dataset.name, variant, kind)
            bundle = load_pickle(path)
            meta = bundle["metadata"]
            why = mismatch(meta["embedding_fingerprint"], test["fingerprint"], MODEL_KEYS)
            if why or meta["dimension_names"] != names:
                raise StudyError(f"{path} was trained on other embeddings than {variant}'s test cache "
                                 f"({why or 'dimension_names differ'}); rerun train_probes.py")
            t0 = time.perf_counter()
            P = bundle["probe"].predict(X)
            seconds = time.perf_counter() - t0
            err = article_mae(Y, P)
            m = {**score(Y, P, names), "mae_ci95": bootstrap_ci(err, n_boot, seed), "val_mae": meta["val_mae"],
                 "per_language": mae_by_group(Y, P, test["languages"]),
                 "truncation": {"max_tokens": max_tokens,
                                **{k: {"n": int(mask.sum()), "mae": float(err[mask].mean()) if mask.any() else None}
                                   for k, mask in (("truncated", truncated), ("not_truncated", ~truncated))}},
                 "inference_ms_per_article": 1000 * seconds / len(Y), "selected": meta["selected"]}
            if baseline:
                diff = err[rows] - base_err
                m["vs_baseline"] = {"n_articles": int(len(rows)), "probe_mae": float(err[rows].mean()),
                                    "baseline_mae": float(base_err.mean()), "mae_difference": float(diff.mean()),
                                    "difference_ci95": bootstrap_ci(diff, n_boot, seed)}
            pred_path = predictions_path(cfg, dataset.name, variant, kind)
            save_npz(pred_path, ids=test["ids"], y_true=Y, y_pred=P.astype(np.float32), languages=test["languages"],
                     token_counts=test["token_counts"], titles=test["titles"], max_tokens=np.int64(max_tokens),
                     dimension_names=np.asarray(names))
            m["predictions_file"] = str(pred_path.relative_to(cfg.results_path))
            entry[kind] = m
            lo, hi = m["mae_ci95"]
            print(f"[{variant}] {kind:8s} test MAE {m['overall_mae']:.4f} [{lo:.4f}, {hi:.4f}]  "
                  f"RMSE {m['overall_rmse']:.4f}  Spearman {m['overall_spearman']:.3f}  (val MAE {meta['val_mae']:.4f})")
        results["models"][variant] = entry

    results["best"] = best_model(results, cfg)
    results["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = cfg.results_path / f"{dataset.name}_evaluation_results.json"
    write_json(out, results)
    b = results["best"]
    print(f"train-mean predictor MAE {results['mean_predictor']['overall_mae']:.4f}")
    print(f"best on validation: {b['model']} + {b['probe']}: test MAE {b['test_mae']:.4f} "
          f"[{b['mae_ci95'][0]:.4f}, {b['mae_ci95'][1]:.4f}]"
          + (f"; fine-tuned baseline {baseline_mae:.2f} ({baseline_source}): {b['band']}" if baseline_mae else
             "; no fine-tuned baseline known (config baseline_mae, --baseline-mae or --baseline-predictions)"))
    print(f"results: {out}")


def best_model(results: dict, cfg) -> dict:
    """The model + probe with the lowest validation MAE (never test), with its test figures."""
    candidates = [(m[p]["val_mae"], v, p) for v, m in results["models"].items() for p in PROBES if p in m]
    _, variant, kind = min(candidates)
    m = results["models"][variant][kind]
    best = {"model": variant, "probe": kind, "val_mae": m["val_mae"], "test_mae": m["overall_mae"],
            "mae_ci95": m["mae_ci95"], "chosen_by": "validation MAE"}
    if results["baseline_mae"]:
        best["gap_to_baseline"] = m["overall_mae"] - results["baseline_mae"]
        best["band"] = success_band(m["overall_mae"], cfg.success_bands.closes_gap, cfg.success_bands.partial)
    return best


if __name__ == "__main__":
    cli.run(main)
