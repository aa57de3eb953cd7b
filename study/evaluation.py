"""Phase 3's work, one function a step: the reference scores, the fine-tuned baseline, scoring and
screening each probe of a variant, the paired sweep differences, and the predictions files.

evaluate.py reads top to bottom as their orchestration; the evaluation JSON they build is
described in study/results.py.
"""
from __future__ import annotations

import time

import numpy as np

from study import paths
from study.artifacts import read_npz, save_npz
from study.cache import data_hashes, load_checked, read_embeddings, read_fingerprint
from study.data import Split, file_sha256, load_baseline_predictions, load_split
from study.errors import StudyError
from study.metrics import (always_yes, article_mae, mae_by_group, paired_difference, score_binary, score_probe,
                           score_with_ci)
from study.probes import load_trained
from study.results import chosen_probe
from study.screening import screen, tier_scores, weight_vector


def mean_predictor(cfg, dataset, variant, test: dict) -> dict:
    """The test set every model must share (`test`: the first variant's test cache), and the reference
    that predicts the training mean."""
    Y, names = test["labels"], test["dimension_names"]
    mean = np.broadcast_to(load_checked(cfg, dataset, variant, "train")["labels"].mean(axis=0), Y.shape)
    return {"n_test": int(len(Y)), "dimension_names": names,
            "language_counts": {k: v["n"] for k, v in mae_by_group(Y, mean, test["languages"]).items()},
            "mean_predictor": score_with_ci(Y, mean, names, cfg.bootstrap_samples, cfg.random_seed)}


def fine_tuned_baseline(cfg, dataset, args, variant) -> dict:
    """The fine-tuned model's MAE and, with --baseline-predictions, its per-article errors."""
    header = {"baseline_mae": dataset.baseline_mae, "baseline_source": "config.yaml baseline_mae"}
    if args.baseline_mae is not None:
        header = {"baseline_mae": args.baseline_mae, "baseline_source": "--baseline-mae"}
    if not args.baseline_predictions:
        return {"header": header, "rows": None}
    split = test_articles(cfg, dataset, variant)
    rows, pred = load_baseline_predictions(args.baseline_predictions, split)
    pred = np.clip(pred, *cfg.score_range)   # as the fine-tuned model's serving code does
    scores = score_with_ci(split.labels[rows], pred, split.dimension_names, cfg.bootstrap_samples, cfg.random_seed)
    print(f"fine-tuned baseline on {len(rows)} matched test articles: MAE {scores['overall_mae']:.4f}")
    header = {"baseline_mae": scores["overall_mae"], "baseline_source": f"predictions file {args.baseline_predictions}",
              "baseline": {**scores, "n_articles": int(len(rows)), "source": str(args.baseline_predictions)}}
    return {"header": header, "rows": rows, "errors": article_mae(split.labels[rows], pred)}


def current_data(cfg, dataset, first) -> dict:
    """{split: hash} of the data files; without them (results copied home) what the first model's caches
    recorded, which every other cache and probe must then agree with."""
    files = {s: dataset.path / f"{s}.jsonl" for s in ("train", "val", "test")}
    if all(f.is_file() for f in files.values()):
        return {s: file_sha256(f) for s, f in files.items()}
    print(f"note: the data files are not in {dataset.path}: the caches are checked against each other and against "
          "the data hashes they recorded, not against the files")
    return data_hashes(cfg, dataset, first)


def screening_setup(cfg, dataset, dimension_names) -> dict:
    """What the screening analysis uses: weights, tiers, recall targets, the fine-tuned model's costs."""
    w = weight_vector(dimension_names, dataset.settings.weights)
    return {"weights": dict(zip(dimension_names, w.tolist())), "tiers": dataset.settings.tiers,
            "recall_targets": list(cfg.screening_recall), "thresholds_chosen_on": "validation",
            "fine_tuned_ms_per_article": list(cfg.fine_tuned_ms_per_article),
            "fine_tuned_training_hours": list(cfg.fine_tuned_training_hours)}


def test_articles(cfg, dataset, variant) -> Split:
    """The test split from its file, or (results copied home) its ids and labels from `variant`'s test cache."""
    if (dataset.path / "test.jsonl").is_file():
        return load_split(dataset, "test", cfg.score_range)
    path = paths.embedding_cache(cfg, dataset.name, variant.name, "test")
    cache = read_embeddings(path)
    n = len(cache["ids"])
    return Split(name="test", path=path, sha256=cache["fingerprint"].get("data_sha256", ""), ids=cache["ids"],
                 titles=cache["titles"], texts=[], labels=cache["labels"], dimension_names=cache["dimension_names"],
                 languages=cache["languages"], language_detected=np.zeros(n, dtype=bool))


def score_variant(cfg, dataset, variant, kinds, context, setup) -> dict:
    """Score each trained probe of one variant on its test embeddings (and screen with its validation
    predictions); write both predictions."""
    test, val = load_checked(cfg, dataset, variant, "test"), load_checked(cfg, dataset, variant, "val")
    if data_hashes(cfg, dataset, variant) != context["data_sha256"]:
        raise StudyError(f"the caches of {variant.name} were made from other data than the current files (or than the "
                         f"first model's caches); rerun embed_articles.py --models {variant.name}")
    if not np.array_equal(test["ids"], context["test_ids"]):
        raise StudyError(f"test embeddings of {variant.name} hold other articles than those of the first model")
    Y, X, names, tokens = test["labels"], test["embeddings"], test["dimension_names"], test["token_counts"]
    spec = cfg.model(variant.model)
    entry = {"model": variant.model, "model_name": spec.model_name, "role": spec.role, "embedding_dim": int(X.shape[1]),
             "max_tokens": variant.max_tokens, "truncated_fraction": float((tokens > variant.max_tokens).mean()),
             "mean_token_count": float(tokens.mean()), "embedding_cost": embedding_cost(cfg, dataset, variant),
             "probes": {}}
    seed, n_boot = cfg.random_seed, cfg.bootstrap_samples
    for kind in kinds:
        probe, meta = load_trained(paths.probe(cfg, dataset.name, variant.name, kind), test,
                                   {s: context["data_sha256"][s] for s in ("train", "val")})
        t0 = time.perf_counter()
        P = probe.predict(X)
        ms = 1000 * (time.perf_counter() - t0) / len(Y)
        P_val = probe.predict(val["embeddings"])
        m = {**score_probe(Y, P, names, languages=test["languages"], token_counts=tokens,
                           max_tokens=variant.max_tokens, n_boot=n_boot, seed=seed),
             "val_mae": meta["val_mae"], "selected": meta["selected"], "inference_ms_per_article": ms,
             "train_seconds": meta["train_seconds"],
             "article_scores": tier_scores(Y, P, context["weights"], setup["tiers"], n_boot, seed),
             "screening": screen((val["labels"], P_val), (Y, P), context["weights"], setup["tiers"],
                                 setup["recall_targets"], cfg.score_range, n_boot, seed)}
        baseline = context["baseline"]
        if baseline["rows"] is not None:
            rows = baseline["rows"]
            m["vs_baseline"] = paired_difference(article_mae(Y[rows], P[rows]), baseline["errors"], n_boot, seed)
        m["predictions_files"] = {split: save_predictions(cfg, dataset, variant, kind, split, cache, pred)
                                  for split, cache, pred in (("test", test, P), ("val", val, P_val))}
        entry["probes"][kind] = m
        lo, hi = m["mae_ci95"]
        print(f"[{variant.name}] {kind:8s} test MAE {m['overall_mae']:.4f} [{lo:.4f}, {hi:.4f}]  "
              f"RMSE {m['overall_rmse']:.4f}  Spearman {m['overall_spearman']:.3f}  (val MAE {m['val_mae']:.4f})")
    entry["chosen_probe"] = chosen_probe(entry["probes"])
    return entry



def add_sweep_differences(cfg, dataset, models: dict) -> None:
    """Truncation sweep: each variant's per-article MAE minus the same model's longest variant's, same probe,
    paired on the same test articles (`vs_longest`): the controlled answer to "does truncation hurt?"."""
    groups: dict[str, list[str]] = {}
    for name, entry in models.items():
        groups.setdefault(entry["model"], []).append(name)
    for variants in (g for g in groups.values() if len(g) > 1):
        longest = max(variants, key=lambda v: models[v]["max_tokens"])
        for v in (v for v in variants if v != longest):
            for kind in set(models[v]["probes"]) & set(models[longest]["probes"]):
                errors = []
                for x in (v, longest):
                    pred = read_npz(paths.predictions(cfg, dataset.name, x, kind), "predictions", "rerun evaluate.py")
                    errors.append(article_mae(pred["y_true"], pred["y_pred"]))
                models[v]["probes"][kind]["vs_longest"] = {
                    "longest": longest, "max_tokens": models[longest]["max_tokens"],
                    **paired_difference(*errors, cfg.bootstrap_samples, cfg.random_seed)}


def save_predictions(cfg, dataset, variant, kind, split, cache, P, threshold: float | None = None) -> str:
    """One split's predictions beside what the error analysis needs; returns the file as recorded.
    A yes/no probe's predictions are P(yes), (n, 1), with the `threshold` it chose on validation."""
    path = paths.predictions(cfg, dataset.name, variant.name, kind, split)
    extra = {} if threshold is None else {"threshold": np.float64(threshold)}
    save_npz(path, ids=cache["ids"], y_true=cache["labels"],
             y_pred=P.astype(np.float32 if threshold is None else np.float64), languages=cache["languages"],
             token_counts=cache["token_counts"], titles=cache["titles"], max_tokens=np.int64(variant.max_tokens),
             dimension_names=np.asarray(cache["dimension_names"]), dataset=np.asarray(dataset.name), **extra)
    return paths.relative(cfg, path)


def embedding_cost(cfg, dataset, variant) -> dict:
    """What embedding each split cost, as recorded in its cache (None where an older cache has no record)."""
    return {s: read_fingerprint(paths.embedding_cache(cfg, dataset.name, variant.name, s), "embed_stats")
            for s in ("train", "val", "test")}


# -- yes/no labels (task: classification) ------------------------------------------------------
def trained_task(dataset, trained: dict, summary_path) -> str:
    """The task the probes of the training summary were trained for (one for all), checked against the task
    the dataset declares (config.yaml or its dataset.yaml) when it declares one."""
    tasks = {m.get("task", "regression") for entry in trained.values() for m in entry.values()}
    if len(tasks) > 1:
        raise StudyError(f"{summary_path} mixes regression and classification probes; remove it and rerun "
                         "train_probes.py")
    found = tasks.pop() if tasks else dataset.task
    if dataset.task_source and found != dataset.task:
        raise StudyError(f"the probes in {summary_path} were trained for {found}, but {dataset.task_source} declares "
                         f"task {dataset.task}; rerun train_probes.py")
    return found


def binary_header(cfg, dataset, variant, test: dict, args) -> dict:
    """The test set every model must share and the always-yes reference; the baseline F1 (--baseline-f1, else
    config.yaml / dataset.yaml)."""
    y = test["labels"].ravel()
    if args.baseline_predictions or args.baseline_mae is not None:
        raise StudyError("--baseline-predictions and --baseline-mae are for score datasets; a yes/no dataset "
                         "compares with a fine-tuned classifier's F1 (--baseline-f1, or baseline_f1 in config)")
    base, source = dataset.baseline_f1, f"{dataset.task_source} baseline_f1" if dataset.task_source else None
    if args.baseline_f1 is not None:
        base, source = args.baseline_f1, "--baseline-f1"
    counts = dict(zip(*np.unique(test["languages"], return_counts=True)))
    return {"task": "classification", "n_test": int(len(y)), "dimension_names": test["dimension_names"],
            "positive_rate": float(y.mean()),
            "language_counts": {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))},
            "always_yes": always_yes(y, cfg.bootstrap_samples, cfg.random_seed),
            "baseline_f1": base, "baseline_source": source if base else None}


def score_binary_variant(cfg, dataset, variant, kinds, context) -> dict:
    """Score each trained yes/no probe of one variant on its test embeddings at the threshold it chose on
    validation; write its test and validation probabilities."""
    test, val = load_checked(cfg, dataset, variant, "test"), load_checked(cfg, dataset, variant, "val")
    if data_hashes(cfg, dataset, variant) != context["data_sha256"]:
        raise StudyError(f"the caches of {variant.name} were made from other data than the current files (or than the "
                         f"first model's caches); rerun embed_articles.py --models {variant.name}")
    if not np.array_equal(test["ids"], context["test_ids"]):
        raise StudyError(f"test embeddings of {variant.name} hold other articles than those of the first model")
    X, tokens, spec = test["embeddings"], test["token_counts"], cfg.model(variant.model)
    entry = {"model": variant.model, "model_name": spec.model_name, "role": spec.role, "embedding_dim": int(X.shape[1]),
             "max_tokens": variant.max_tokens, "truncated_fraction": float((tokens > variant.max_tokens).mean()),
             "mean_token_count": float(tokens.mean()), "embedding_cost": embedding_cost(cfg, dataset, variant),
             "probes": {}}
    for kind in kinds:
        probe, meta = load_trained(paths.probe(cfg, dataset.name, variant.name, kind), test,
                                   {s: context["data_sha256"][s] for s in ("train", "val")})
        if meta.get("task") != "classification":
            raise StudyError(f"{paths.probe(cfg, dataset.name, variant.name, kind)} is not a yes/no probe; rerun "
                             "train_probes.py")
        t0 = time.perf_counter()
        p = probe.predict_proba(X)[:, 1]
        ms = 1000 * (time.perf_counter() - t0) / len(p)
        p_val = probe.predict_proba(val["embeddings"])[:, 1]
        m = {**score_binary(test["labels"], p, probe.threshold_, languages=test["languages"], token_counts=tokens,
                            max_tokens=variant.max_tokens, n_boot=cfg.bootstrap_samples, seed=cfg.random_seed),
             "val_log_loss": meta["val_log_loss"], "val_f1": meta["val_f1"], "selected": meta["selected"],
             "inference_ms_per_article": ms, "train_seconds": meta["train_seconds"]}
        m["predictions_files"] = {split: save_predictions(cfg, dataset, variant, kind, split, cache, pred[:, None],
                                                          threshold=probe.threshold_)
                                  for split, cache, pred in (("test", test, p), ("val", val, p_val))}
        entry["probes"][kind] = m
        print(f"[{variant.name}] {kind:8s} test F1 {_fmt(m['f1'])} [{_fmt(m['f1_ci95'][0])}, {_fmt(m['f1_ci95'][1])}]  "
              f"precision {_fmt(m['precision'])}  recall {_fmt(m['recall'])}  AUC {_fmt(m['roc_auc'])}  "
              f"(threshold {m['threshold']:.3f}; val log-loss {m['val_log_loss']:.4f}, val F1 {m['val_f1']:.4f})")
    entry["chosen_probe"] = chosen_probe(entry["probes"])
    return entry


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"
