"""Re-splits (evaluate.py --resplits K): the labelled articles of a small dataset (train + val + test pooled)
cut into K folds, each probe fitted again per fold, so that every labelled article is a test article once.

One split of a small dataset tests on few articles and decides almost nothing (a paired difference of the
margin needs hundreds of test articles); the same probe recipe re-fitted K times on the other folds predicts
every article once, and the paired differences pooled over all of them carry the verdicts.

The rule (one seeded permutation of the pooled articles, `random_seed`):
- fold f is the f-th of K near-equal slices of the permutation (numpy `array_split`);
- the articles of the other folds, in permutation order, give validation its original share of train + val
  (the first round(share x rows) of them, at least 1) and training the rest;
- each probe is fitted by the same code as phase 2 (study/probes.py `make_probe`, the same settings, seeds and
  validation choices) and predicts its fold; the constant reference is each fold's training median;
- the pooled per-article errors are compared by the comparison rule (study/evaluation.py `compared`, the paired
  bootstrap over the articles); each fold's own figures are recorded as the per-split spread.

What the pooled CI holds: the uncertainty of the articles, given the K fitted probes (as a single split's holds it
given one probe); the spread of the per-fold differences shows how much the probe itself moves with its training
articles. Score datasets only; the fine-tuned encoder arm is not fitted again (a training run per fold).
"""
from __future__ import annotations

import numpy as np

from study.cache import load_checked
from study.errors import StudyError
from study.evaluation import ci_method, compared, spread
from study.metrics import article_mae, bootstrap_ci
from study.probes import make_probe
from study.tasks import ARM

AUTO_BELOW = 500   # config resplits: auto turns re-splits on below this many labelled articles (README)
AUTO_K = 5         # ... with this many folds
RULE = ("K-fold re-splits of the labelled articles (train + val + test pooled, one permutation seeded with "
        "random_seed); per fold: validation the original share of the rest, the probe fitted again as in phase 2, "
        "the constant the fold's training median; every article predicted once, paired differences pooled over all")


def resplits_asked(setting, asked: int | None, n_labelled: int, task: str) -> tuple[int, str | None]:
    """(K, why) of the re-splits this evaluation runs: `asked` (--resplits; 0 turns them off) else config `setting`
    (an int, or "auto": AUTO_K folds below AUTO_BELOW labelled articles). K 0: none (why None). Score datasets only
    (asked for on yes/no labels: a note, none run)."""
    if asked is not None:
        k, why = asked, f"--resplits {asked}"
    elif setting == "auto":
        k = AUTO_K if n_labelled < AUTO_BELOW else 0
        why = f"config resplits auto: {n_labelled} labelled articles, fewer than {AUTO_BELOW}"
    else:
        k, why = int(setting), f"config resplits {setting}"
    if k == 0 or task != "regression":
        if asked and task != "regression":   # a note, not an error: run_all.py may pass it to mixed datasets
            print("note: --resplits: re-splits are measured in MAE, on score datasets; none on these yes/no labels")
        return 0, None
    if k < 2:
        raise StudyError(f"--resplits {k}: re-splits need at least 2 folds (0 turns them off)")
    if k > n_labelled:
        raise StudyError(f"--resplits {k}: more folds than the {n_labelled} labelled articles")
    return k, why


def labelled_count(cfg, dataset, variant) -> int:
    """The labelled articles of all three splits (what re-splits pool)."""
    return sum(len(load_checked(cfg, dataset, variant, s)["labels"]) for s in ("train", "val", "test"))


def fold_rows(order: np.ndarray, fold: np.ndarray, val_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of one fold: the articles of the other folds in permutation order `order`,
    the first round(val_share x rows) of them (at least 1, leaving 2 for training) for validation."""
    rest = order[~np.isin(order, fold)]
    n_val = min(max(1, round(val_share * len(rest))), len(rest) - 2)
    if n_val < 1:
        raise StudyError(f"re-splits: {len(rest)} articles outside a fold leave no training and validation rows; "
                         "use fewer folds")
    return rest[n_val:], rest[:n_val]


def add_resplits(cfg, dataset, variants, models: dict, asked: int | None) -> dict | None:
    """The re-splits of this evaluation (`asked`: --resplits, else config `resplits`), each probe's pooled record
    under its `resplits` in `models`; the evaluation's `resplits` record ({"k", "n_articles", "why", "rule"}), or
    None when none ran."""
    n = labelled_count(cfg, dataset, variants[0])
    k, why = resplits_asked(cfg.resplits, asked, n, "regression")
    if not k:
        return None
    for v in variants:
        entry = models[v.name]
        for kind, rec in resplit_variant(cfg, dataset, v, list(entry["probes"]), k, entry["chosen_probe"]).items():
            entry["probes"][kind]["resplits"] = rec
            d = rec["vs_median_predictor"]
            s = rec["difference_spread"]
            print(f"[{v.name}] {kind:8s} {k} re-splits, {n} articles: MAE {rec['test_mae']:.4f}; minus the training "
                  f"median {d['mae_difference']:+.4f} [{d['difference_ci95'][0]:+.4f}, {d['difference_ci95'][1]:+.4f}] "
                  f"({d['verdict']}); per split {s['mean']:+.4f} ± {s['sd'] or 0:.4f} ({s['min']:+.4f} to {s['max']:+.4f})")
    return {"k": k, "n_articles": n, "why": why, "rule": RULE}


def resplit_variant(cfg, dataset, variant, kinds: list[str], k: int, chosen: str) -> dict:
    """Each probe of `kinds` (not the fine-tuned arm) of one variant fitted again on K folds of the pooled labelled
    articles: {probe: {"k", "n_articles", "test_mae", "mae_ci95", "vs_median_predictor", "vs_chosen" (against the
    model's probe chosen on validation, `chosen`, pooled the same way), "per_split", "difference_spread",
    "test_mae_spread"}}."""
    caches = [load_checked(cfg, dataset, variant, s) for s in ("train", "val", "test")]
    X = np.concatenate([c["embeddings"] for c in caches])
    Y = np.concatenate([c["labels"] for c in caches]).astype(np.float64)
    n_train, n_val = len(caches[0]["labels"]), len(caches[1]["labels"])

    def fitted(kind):
        return make_probe(kind, getattr(cfg.probe_methods, kind), score_range=cfg.score_range, seed=cfg.random_seed,
                          task="regression", n_seeds=cfg.seeds_for(dataset.path))

    errors, median_errors, test_folds = cross_fit(X, Y, [kd for kd in kinds if kd != ARM], fitted, k,
                                                  n_val / (n_train + n_val), cfg.random_seed)
    return pooled_records(cfg, errors, median_errors, test_folds, chosen)


def cross_fit(X, Y, kinds: list[str], make, k: int, val_share: float, seed: int):
    """(per-article test MAE of each probe kind {kind: (n,)}, the constant's (n,), the K test folds): each fold's
    probes `make(kind)` fitted on the fold's training rows, choices on its validation rows (`fold_rows`)."""
    Y = np.asarray(Y, dtype=np.float64)
    n = len(Y)
    order = np.random.default_rng(seed).permutation(n)
    test_folds = np.array_split(order, k)
    errors = {kd: np.empty(n) for kd in kinds}
    median_errors = np.empty(n)
    for fold in test_folds:
        train, val = fold_rows(order, fold, val_share)
        median_errors[fold] = article_mae(Y[fold], np.broadcast_to(np.median(Y[train], axis=0), Y[fold].shape))
        for kd in kinds:
            probe = make(kd)
            probe.fit(X[train], Y[train], X[val], Y[val])
            errors[kd][fold] = article_mae(Y[fold], probe.predict(X[fold]))
    return errors, median_errors, test_folds


def pooled_records(cfg, errors: dict, median_errors: np.ndarray, test_folds: list, chosen: str) -> dict:
    """`resplit_variant`'s records from the pooled errors: the comparison rule (study/evaluation.py `compared`) on
    all articles, and each fold's figures with their spread."""
    out, n, k = {}, len(median_errors), len(test_folds)
    for kd, e in errors.items():
        per_split = [{"n_test": int(len(f)), "test_mae": float(e[f].mean()), "median_mae": float(median_errors[f].mean()),
                      "mae_difference": float((e[f] - median_errors[f]).mean())} for f in test_folds]
        out[kd] = {"k": k, "n_articles": n, "test_mae": float(e.mean()),
                   "mae_ci95": list(bootstrap_ci(e, cfg.bootstrap_samples, cfg.random_seed, method=ci_method(cfg, n))),
                   "mae_ci_method": ci_method(cfg, n),
                   "vs_median_predictor": compared(cfg, e, median_errors), "per_split": per_split,
                   "difference_spread": spread([s["mae_difference"] for s in per_split]),
                   "test_mae_spread": spread([s["test_mae"] for s in per_split])}
    if chosen in errors:
        for kd in errors:
            if kd != chosen:
                out[kd]["vs_chosen"] = {"chosen": chosen, **compared(cfg, errors[kd], errors[chosen])}
    return out
