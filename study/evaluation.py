"""Phase 3's work, one function a step: the reference scores, the fine-tuned baseline, scoring and
screening each probe of a variant, its learning curve, the paired sweep differences, and the
predictions files.

evaluate.py reads top to bottom as their orchestration; the evaluation JSON they build is
described in study/results.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from study import languages, paths
from study.artifacts import read_npz, save_npz
from study.cache import data_hashes, load_checked, read_embeddings, read_fingerprint
from study.config import TEACHER_SUFFIX
from study.data import Split, file_sha256, load_baseline_predictions, load_split, load_teacher_predictions
from study.errors import StudyError
from study.finetune import load_arm
from study.metrics import (always_yes, article_mae, binary_scores, bootstrap_ci, bootstrap_statistic,
                           groups_largest_first, mae_by_group, paired_difference, score_binary, score_probe, score_with_ci)
from study.probes import best_f1_threshold, load_trained
from study.results import band_interval, chosen_probe, layer_groups, sweep_groups
from study.screening import majority_tier, screen, seed_skip_shares, tier_scores, weight_vector
from study.tasks import ARM, SCORES, YES_NO
from study.tasks import task as task_of
from study.verdicts import (CURVE_BOOTSTRAP_SEEDS, INCONCLUSIVE, band_phrase, bands_spanned, claim_p_value,
                            curve_reading, doubling_reference, holm_changes, null_result, paired_reading,
                            unpaired_reading, verdict)


def train_mean_predictions(cfg, dataset, variant, test: dict) -> tuple[np.ndarray, np.ndarray]:
    """(the train-mean predictor's test predictions, the training labels)."""
    train = load_checked(cfg, dataset, variant, "train")["labels"]
    return np.broadcast_to(train.mean(axis=0), test["labels"].shape), train


def train_median_predictions(train_labels, test_labels) -> np.ndarray:
    """The constant that predicts each dimension's training median: the best constant for MAE (the mean is the
    best for squared error), and so the reference of "does the probe learn anything?"."""
    train = np.asarray(train_labels, dtype=np.float64)
    return np.broadcast_to(np.median(train, axis=0), np.shape(test_labels))


def mean_predictor(cfg, dataset, variant, test: dict) -> dict:
    """The test set every model must share (`test`: the first variant's test cache), and the two constant
    references: the training mean (`mean_predictor`; its `article_scores` and `majority_tier` are the trivial
    references of tier accuracy and of the shares within ±0.5 / ±1) and the training median
    (`median_predictor`, what "learns anything" is read against)."""
    Y, names = test["labels"], test["dimension_names"]
    mean, train = train_mean_predictions(cfg, dataset, variant, test)
    median = train_median_predictions(train, Y)
    w = weight_vector(names, dataset.settings.weights)
    tiers = dataset.settings.tiers
    return {"n_test": int(len(Y)), "dimension_names": names,
            "language_counts": {k: v["n"] for k, v in mae_by_group(Y, mean, test["languages"]).items()},
            "mean_predictor": {**score_with_ci(Y, mean, names, cfg.bootstrap_samples, cfg.random_seed,
                                               ci_method(cfg, len(Y))),
                               "article_scores": tier_scores(Y, mean, w, tiers, cfg.bootstrap_samples,
                                                             cfg.random_seed),
                               "majority_tier": majority_tier(np.asarray(train, np.float64) @ w,
                                                              np.asarray(Y, np.float64) @ w, tiers)},
            "median_predictor": score_with_ci(Y, median, names, cfg.bootstrap_samples, cfg.random_seed,
                                              ci_method(cfg, len(Y)))}


def ci_method(cfg, n: int) -> str:
    """The bootstrap CI of a test MAE over `n` articles: BCa below config `bca_below` articles, else percentile. On
    few articles the per-article MAE is skewed and the percentile CI misses low about twice as often as high; BCa
    evens the two (docs/RESULTS.md, issue 25). Paired differences stay percentile: there BCa covered less."""
    return "BCa" if n < cfg.bca_below else "percentile"


def compared(cfg, mine: np.ndarray, theirs: np.ndarray) -> dict:
    """`paired_difference` (mine minus theirs, per-article MAE, same articles, percentile CI) with the comparison
    rule's "verdict" (study/verdicts.py, lower is better) and the "equivalence_margin" it was read against."""
    d = paired_difference(mine, theirs, cfg.bootstrap_samples, cfg.random_seed)
    return {**d, "verdict": _judged(cfg, len(mine), verdict(d["difference_ci95"], cfg.equivalence_margin)),
            "equivalence_margin": cfg.equivalence_margin}


def _judged(cfg, n: int, said: str) -> str:
    """`said`, or 'inconclusive' from fewer than `min_group_articles` test articles: a bootstrap CI of one article
    has zero width and would call any difference."""
    return said if n >= cfg.min_group_articles else INCONCLUSIVE


def candidates(models: dict) -> int:
    """The model + probe pairs the best was chosen from: the frozen probes of the models that read every test
    language (all of them when none does: then the best is a control, and page 1 says the run cannot decide)."""
    valid = [e for e in models.values() if not e.get("control")] or list(models.values())
    return sum(len([k for k in e["probes"] if k != ARM]) for e in valid)


def best_verdicts(cfg, results: dict) -> dict:
    """What the comparison rule says of the best model + probe (the evaluation JSON's `best["verdicts"]`), read as
    the results' task reads (study/tasks.py: its constant reference, margin, baseline figure and direction):
    "candidates" (model + probe pairs it was chosen from on validation); the paired verdict against the task's
    constant (`vs_median_predictor`, the training median, for scores: what "learns anything" reads, pooled over the
    re-splits where they ran, `against_constant_from` says which, with `vs_mean_predictor`, the training mean,
    beside it; `vs_always_yes`, saying yes to every article, for yes/no labels); "null_result" (study/verdicts.py
    `null_result`, or None when better); with a baseline "vs_baseline" (paired on the fine-tuned model's
    predictions where given, else unpaired against its figure, a test with the baseline's test size `baseline_n`,
    else descriptive) and, for scores, "bands_spanned" and "band_reading" (the bands of the whole 95% CI of the test
    MAE, as `best["band"]`)."""
    task = task_of(results.get("task"))
    b, margin = results["best"], getattr(cfg, task.margin_setting)
    m = results["models"][b["model"]]["probes"][b["probe"]]
    d, pooled = m[task.reference.field], m.get("resplits")
    if pooled:   # re-splits ran (study/resplits.py): their pooled paired difference carries the verdict
        d = pooled[task.reference.field]
    ci, n = _interval(d, results)
    out = {"candidates": candidates(results["models"]), task.reference.field: d["verdict"],
           "null_result": null_result(d["verdict"], task.reference.words, ci=ci, n=n, margin=margin)}
    if "vs_mean_predictor" in m:   # scores: the training mean beside the median, and where the median was read
        out.update(vs_mean_predictor=m["vs_mean_predictor"]["verdict"],
                   against_constant_from=(f"{pooled['k']} re-splits, {pooled['n_articles']} articles" if pooled else
                                          "the test split"))
    base, value = results.get(task.baseline_field), m[task.headline.field]
    if base and value is not None:
        paired = m.get("vs_baseline")   # scores, with the fine-tuned model's own predictions
        r = (paired_reading(paired["mae_difference"], paired["difference_ci95"], margin) if paired else
             unpaired_reading(value, m[task.headline.ci_field], base, margin, task.better, n=results["n_test"],
                              baseline_n=results.get("baseline_n")))
        r["verdict"] = _judged(cfg, results.get("n_test", cfg.min_group_articles), r["verdict"])
        out["vs_baseline"] = r
        if task.has("bands"):
            ci, base = band_interval(m, base)
            out["bands_spanned"] = bands_spanned(ci, base, results["success_bands"])
            out["band_reading"] = band_phrase(out["bands_spanned"])
    return out


def _interval(d: dict, results: dict) -> tuple:
    """(95% CI, articles) of a paired comparison's record: a difference of per-article MAE (`compared`, which counts
    its articles) or of F1 on the test articles (`f1_difference`)."""
    return (d["difference_ci95"], d["n_articles"]) if "difference_ci95" in d else (d["ci95"], results["n_test"])


def _readings(x, where: str = ""):
    """(where, record) of every comparison read by the rule under `x` (a dict with a verdict and its CI)."""
    if isinstance(x, dict):
        if isinstance(x.get("verdict"), str) and any(k in x for k in ("difference_ci95", "ci95", "per_doubling_ci95")):
            yield where, x
        for k, v in x.items():
            yield from _readings(v, f"{where}.{k}" if where else str(k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _readings(v, f"{where}[{i}]")


def multiplicity(results: dict, holm: bool) -> dict:
    """How many comparisons this evaluation read by the rule (each a 95% test, not adjusted), by kind, and, with
    `holm` (evaluate.py --holm, config `holm`), which decided verdicts Holm's step-down adjustment over all of them
    would turn to 'inconclusive' (study/verdicts.py `claim_p_value`, `holm_changes`). The verdict words stay the
    rule's: the record only says which an adjustment would change."""
    found = list(_readings(results["models"], "models"))
    unpaired = (results.get("best") or {}).get("verdicts", {}).get("vs_baseline")
    if unpaired and not unpaired.get("paired"):
        found.append(("best.verdicts.vs_baseline", unpaired))
    kinds: dict[str, int] = {}
    for where, _ in found:
        kind = where.split(".")[-1].split("[")[0] if "learning_curve" not in where else "learning_curve"
        kinds[kind] = kinds.get(kind, 0) + 1
    out = {"comparisons": len(found), "by_kind": dict(sorted(kinds.items())), "holm": None}
    if holm:
        p = []
        for _, r in found:
            ci = r.get("per_doubling_ci95") or r.get("difference_ci95") or r.get("ci95")
            margin = r.get("equivalence_margin", r.get("margin"))
            p.append(claim_p_value(ci, margin, r["verdict"], r.get("better", "lower")))
        out["holm"] = {"alpha": 0.05, "would_change": [
            {"where": where, "verdict": r["verdict"], "p": pv} for (where, r), pv, changed in
            zip(found, p, holm_changes(p)) if changed]}
    return out


@dataclass(frozen=True)
class BaselineOptions:
    """What evaluate.py's command line says of the fine-tuned baseline (None: not given; config's then counts)."""
    mae: float | None = None            # --baseline-mae
    predictions: str | None = None      # --baseline-predictions: its per-article test predictions
    n: int | None = None                # --baseline-n: the test articles the single figure was measured on
    f1: float | None = None             # --baseline-f1 (yes/no datasets)


def fine_tuned_baseline(cfg, dataset, opts: BaselineOptions, variant) -> dict:
    """The fine-tuned model's MAE and, with --baseline-predictions, its per-article errors; with a single MAE its
    test size (`baseline_n`: --baseline-n, else config baseline_n) when known."""
    header = {"baseline_mae": dataset.baseline_mae, "baseline_source": "config.yaml baseline_mae"}
    if opts.mae is not None:
        header = {"baseline_mae": opts.mae, "baseline_source": "--baseline-mae"}
    header["baseline_n"] = baseline_n(dataset, opts)
    if not opts.predictions:
        return {"header": header, "rows": None}
    split = test_articles(cfg, dataset, variant)
    rows, pred = load_baseline_predictions(opts.predictions, split)
    pred = np.clip(pred, *cfg.score_range)   # as the fine-tuned model's serving code does
    scores = score_with_ci(split.labels[rows], pred, split.dimension_names, cfg.bootstrap_samples, cfg.random_seed)
    print(f"fine-tuned baseline on {len(rows)} matched test articles: MAE {scores['overall_mae']:.4f}")
    header = {"baseline_mae": scores["overall_mae"], "baseline_source": f"predictions file {opts.predictions}",
              "baseline": {**scores, "n_articles": int(len(rows)), "source": str(opts.predictions)}}
    return {"header": header, "rows": rows, "errors": article_mae(split.labels[rows], pred)}


def baseline_n(dataset, opts: BaselineOptions) -> int | None:
    """The test articles the single baseline figure was measured on: --baseline-n, else the dataset's config
    `baseline_n`; None when unknown (the unpaired reading is then descriptive, not a test)."""
    return opts.n if opts.n is not None else getattr(dataset, "baseline_n", None)


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
            "confidence": cfg.screening_confidence,
            "threshold_rule": "guaranteed: one-sided Clopper-Pearson order statistic; threshold: plug-in (reference)",
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


LENGTHS_ASKED = (128, 512)   # the study's truncation question: what share of articles is longer than these


def variant_entry(cfg, dataset, variant, context) -> tuple[dict, dict, dict, int]:
    """(test cache, validation cache, the variant's evaluation entry without probes, the token count beyond which
    it loses text), once its caches are checked against the data and the first variant's test articles."""
    test, val = load_checked(cfg, dataset, variant, "test"), load_checked(cfg, dataset, variant, "val")
    if data_hashes(cfg, dataset, variant) != context["data_sha256"]:
        raise StudyError(f"the caches of {variant.name} were made from other data than the current files (or than the "
                         f"first model's caches); rerun embed_articles.py --models {variant.name}")
    if not np.array_equal(test["ids"], context["test_ids"]):
        raise StudyError(f"test embeddings of {variant.name} hold other articles than those of the first model")
    tokens, n = test["token_counts"], len(test["ids"])
    spec, cost = cfg.describe(variant), embedding_cost(cfg, dataset, variant)
    cut_at = cut_length(cfg, variant, cost)
    entry = {"model": variant.model, "model_name": spec["model_name"], "role": spec["role"],
             **languages.coverage([(p.model, languages.declared(cfg.model(p.model))[0]) for p in variant.parts or [variant]],
                                  context["language_counts"]),
             "embedding_dim": int(test["embeddings"].shape[1]), "max_tokens": variant.max_tokens,
             "truncated_fraction": float((tokens > cut_at).mean()), "mean_token_count": float(tokens.mean()),
             "longer_than": {str(t): float((tokens > t).mean()) for t in LENGTHS_ASKED},
             "embedding_cost": cost, **{k: spec[k] for k in ("chunked", "parts", "layer", "teacher") if k in spec}, "probes": {}}
    if variant.chunked:
        entry["chunks"] = {"window": variant.max_tokens, **cfg.chunking.model_dump(), "token_capacity": cut_at,
                           "windows_per_article": cost["test"]["windows"] / n,
                           "capped_fraction": cost["test"]["capped_articles"] / n}
    return test, val, entry, cut_at


def score_variant(cfg, dataset, variant, kinds, context, task) -> dict:
    """One variant's evaluation entry: each trained probe of `kinds` (and the fine-tuned encoder arm) predicts the
    test and validation articles and is scored as its task (study/tasks.py) scores (`_SCORING`): MAE, tiers,
    screening and the constants for scores, F1, precision, recall and ROC AUC at the threshold it chose on
    validation and saying yes to everything for yes/no labels; then its seed spread, both predictions written, its
    console line and (scores) its learning curve; the probe chosen on validation."""
    test, val, entry, cut_at = variant_entry(cfg, dataset, variant, context)
    scoring, metric = _SCORING[task.name], task.headline
    for kind in kinds:
        probe, meta, (P, P_val), ms = _predictions(cfg, dataset, variant, kind, task, (test, val), context)
        m = {**scoring.measure(cfg, context, (test, P), (val, P_val), (probe, meta), cut_at),
             **{f: meta[f] for f in task.validation_fields}, "selected": meta["selected"],
             "inference_ms_per_article": ms, "train_seconds": meta["train_seconds"]}
        m["seeds"] = seed_spread(meta, scoring.members(probe, test, val) if hasattr(probe, "member_outputs") else
                                 [m[metric.field]], task)
        m["predictions_files"] = {   # a yes/no probe's P(yes) as one column, with the threshold it chose
            split: save_predictions(cfg, dataset, variant, kind, split, cache, pred.reshape(len(pred), -1), cut_at,
                                    threshold=m.get("threshold"))
            for split, cache, pred in (("test", test, P), ("val", val, P_val))}
        entry["probes"][kind] = m
        lo, hi = m[metric.ci_field]
        print(f"[{variant.name}] {kind:8s} {metric.name} {_fmt(m[metric.field])} [{_fmt(lo)}, {_fmt(hi)}]  "
              + scoring.said(m) + said_seeds(m["seeds"]))
        if task.has("learning_curve"):
            add_learning_curve(cfg, dataset, variant, kind, test, (P, m, meta, probe), context)
    entry["chosen_probe"] = chosen_probe(entry["probes"])
    return entry


def _predictions(cfg, dataset, variant, kind, task, caches: tuple, context) -> tuple:
    """(probe, its metadata, (test, validation) predictions, ms per test article) of one probe of `variant`: the
    fine-tuned encoder arm's own predictions (no probe), or the trained probe's (checked to be one of `task`),
    timed on the test articles. A yes/no probe predicts P(yes), a score probe the scores."""
    test, val = caches
    if kind == ARM:   # the fine-tuned encoder: its own predictions, scored like a probe's
        P, P_val, meta = load_arm(paths.finetuned(cfg, dataset.name, variant.name), test, val, context["data_sha256"])
        return None, meta, (P, P_val), meta["inference_ms_per_article"]
    path = paths.probe(cfg, dataset.name, variant.name, kind)
    probe, meta = load_trained(path, test, {s: context["data_sha256"][s] for s in ("train", "val")})
    if task_of(meta.get("task")) is not task:
        raise StudyError(f"{path} is a probe for {task_of(meta.get('task')).label}, not for {task.label}; rerun "
                         "train_probes.py")
    predict = _SCORING[task.name].predict
    t0 = time.perf_counter()
    P = predict(probe, test["embeddings"])
    ms = 1000 * (time.perf_counter() - t0) / len(P)
    return probe, meta, (P, predict(probe, val["embeddings"])), ms


def _score_measures(cfg, context, test: tuple, val: tuple, trained: tuple, cut_at: int) -> dict:
    """What a score probe's test predictions measure (`test`, `val`: (cache, predictions); `trained`: (probe,
    metadata)): MAE, RMSE and Spearman with their CIs (per dimension, language and truncation), the tiers, screening
    (thresholds chosen on its validation predictions; the guaranteed skip share seed by seed for an ensemble; against
    the teacher's own decisions with --teacher-predictions), and the paired comparisons with the training mean and
    median (overall and per language) and with the fine-tuned model's predictions where given (overall and per
    language: `by_language[lang]["vs_baseline"]`, for a language with at least min_group_articles scored articles)."""
    (tc, P), (vc, P_val), (probe, meta) = test, val, trained
    setup, w, n_boot, seed = context["screening_setup"], context["weights"], cfg.bootstrap_samples, cfg.random_seed
    Y, X = tc["labels"], tc["embeddings"]
    m = {**score_probe(Y, P, tc["dimension_names"], languages=tc["languages"], token_counts=tc["token_counts"],
                       max_tokens=cut_at, n_boot=n_boot, seed=seed, method=ci_method(cfg, len(Y))),
         "article_scores": tier_scores(Y, P, w, setup["tiers"], n_boot, seed),
         "screening": screen((vc["labels"], P_val), (Y, P), w, setup["tiers"], setup["recall_targets"], cfg.score_range,
                             n_boot, seed, confidence=cfg.screening_confidence, min_articles=cfg.min_group_articles,
                             languages=tc["languages"])}
    if meta["seeds"]["n"] > 1 and hasattr(probe, "member_outputs"):   # the guaranteed skip share, seed by seed
        shares = seed_skip_shares((vc["labels"], probe.member_outputs(vc["embeddings"])), (Y, probe.member_outputs(X)),
                                  w, setup["tiers"]["medium"], setup["recall_targets"], cfg.screening_confidence)
        for entry_t, each in zip(m["screening"]["thresholds"], shares):
            entry_t["guaranteed"]["seed_spread"] = spread(each)
    if context.get("teacher") is not None:
        m["screening_vs_teacher"] = teacher_screening(cfg, setup, context, (vc, P_val), (tc, P))
    errors, median_errors = article_mae(Y, P), article_mae(Y, context["median_predictions"])
    m["vs_mean_predictor"] = compared(cfg, errors, article_mae(Y, context["mean_predictions"]))
    m["by_language"] = by_language(cfg, errors, median_errors, tc["languages"])
    m["vs_median_predictor"] = compared(cfg, errors, median_errors)
    baseline = context["baseline"]
    if baseline["rows"] is not None:
        rows = baseline["rows"]
        mine = article_mae(Y[rows], P[rows])
        m["vs_baseline"] = compared(cfg, mine, baseline["errors"])
        scored = np.asarray(tc["languages"])[rows]   # the languages of the articles it scored
        for lang, d in per_language(cfg, mine, baseline["errors"], scored, m["by_language"]).items():
            if d is not None:
                m["by_language"][lang]["vs_baseline"] = d
    return m


def member_maes(probe, test: dict, val: dict) -> list:
    """Test MAE of each member of a score seed ensemble alone."""
    return [float(np.mean(np.abs(test["labels"] - P))) for P in probe.member_outputs(test["embeddings"])]


def add_learning_curve(cfg, dataset, variant, kind, test: dict, full: tuple, context) -> None:
    """A score probe's learning curve (`learning_curve`) into its record, where train_probes.py --train-fractions
    trained its subset probes (`full`: the full-data probe's test predictions, record, metadata and probe)."""
    m = full[1]
    record = context["trained"].get(variant.name, {}).get(kind)
    subsets = record.train_subsets if record else None
    if not subsets:
        return
    m["learning_curve"] = learning_curve(cfg, dataset, variant, kind, subsets, test, full, context)
    print(f"[{variant.name}] {kind:8s} learning curve: " + ", ".join(
        f"{p['n_train']} articles {p['test_mae']:.4f} [{p['mae_ci95'][0]:.4f}, {p['mae_ci95'][1]:.4f}]"
        for p in m["learning_curve"]))
    r = m["learning_curve"][-1].get("vs_doubling")
    if r:
        lo, hi = r["per_doubling_ci95"]
        print(f"[{variant.name}] {kind:8s} {r['n_reference']} -> {r['n_last']} articles: test MAE "
              f"{r['per_doubling']:+.4f} [{lo:+.4f}, {hi:+.4f}] per doubling (paired, margin "
              f"±{r['margin']:g}): {r['reading']}")


def teacher_scores(cfg, dataset, variant, path):
    """--teacher-predictions for phase 3 (`study.data.load_teacher_predictions`, refused when it scores none of the
    validation and test articles), or None without it."""
    if not path:
        return None
    val, test = (load_checked(cfg, dataset, variant, s) for s in ("val", "test"))
    return load_teacher_predictions(path, test["dimension_names"], cfg.score_range, [*val["ids"], *test["ids"]])


def teacher_screening(cfg, setup, context, val: tuple, test: tuple) -> dict | None:
    """Screening read against the teacher's (the fine-tuned model's) own medium+ decisions: its scores stand for the
    labels of the validation and test articles it scored (`val`, `test`: (cache, the probe's predictions)), the
    thresholds chosen on those validation articles (`screen`, each with its guarantee), the recall measured on those
    test articles. None when the teacher scored no validation or no test article."""
    teacher = context["teacher"]
    (vc, Pv), (tc, Pt) = val, test
    rv, Tv = teacher.rows(vc["ids"])
    rt, Tt = teacher.rows(tc["ids"])
    if not len(rv) or not len(rt):
        return None
    return {"n_val": int(len(rv)), "n_test": int(len(rt)),
            "screening": screen((Tv, Pv[rv]), (Tt, Pt[rt]), context["weights"], setup["tiers"], setup["recall_targets"],
                                cfg.score_range, cfg.bootstrap_samples, cfg.random_seed,
                                confidence=cfg.screening_confidence, min_articles=cfg.min_group_articles)}


def add_teacher_differences(cfg, dataset, models: dict, trained: dict) -> None:
    """A teacher variant (`<variant>+teacher`) against its base variant trained on labels only: each probe's
    per-article test MAE minus the label-only probe's, paired on the same test articles (`vs_label_only`), with how
    the teacher probe was trained (the training summary's `teacher` record)."""
    for name, entry in models.items():
        base = name.removesuffix(TEACHER_SUFFIX) if entry.get("teacher") else None
        for kind in [k for k in entry["probes"] if k in models[base]["probes"]] if base in models else ():
            record = trained[name][kind].teacher
            if record is None:
                continue
            source = dataset.path / "unlabelled.jsonl"
            if source.is_file() and file_sha256(source) != record.unlabelled_sha256:
                raise StudyError(f"{name} {kind} was trained on another unlabelled.jsonl than {source}; rerun "
                                 "train_probes.py --teacher-predictions ...")
            errors = [test_errors(cfg, dataset, x, kind)[0] for x in (name, base)]
            d = entry["probes"][kind]["vs_label_only"] = {"label_only": base, "teacher": record.model_dump(),
                                                          **compared(cfg, *errors)}
            lo, hi = d["difference_ci95"]
            print(f"[{name}] {kind:8s} trained on {record.n_labelled} labelled + {record.n_teacher} teacher-scored "
                  f"articles (weight {record.weight:g}) against labels only: test MAE {d['mae_difference']:+.4f} "
                  f"[{lo:+.4f}, {hi:+.4f}] (paired, margin ±{cfg.equivalence_margin:g}): {d['verdict']}")


def by_language(cfg, errors: np.ndarray, reference_errors: np.ndarray, groups) -> dict:
    """Per test language, largest first: {"n", "mae", "mae_ci95", "too_few", "vs_reference"}: the probe's MAE there
    with its bootstrap CI, and its per-article MAE minus the constant reference's (the training median, what
    `vs_median_predictor` reads) on the same articles, by the comparison rule. A language with fewer than `min_group_articles` test
    articles is `too_few` and gets no interval or verdict (its MAE is still shown)."""
    out = {}
    for lang, rows in groups_largest_first(groups):
        n, few = int(rows.sum()), int(rows.sum()) < cfg.min_group_articles
        out[lang] = {"n": n, "mae": float(errors[rows].mean()), "too_few": few,
                     "mae_ci95": None if few else list(bootstrap_ci(errors[rows], cfg.bootstrap_samples, cfg.random_seed)),
                     "vs_reference": None if few else compared(cfg, errors[rows], reference_errors[rows])}
    return out


def per_language(cfg, mine: np.ndarray, theirs: np.ndarray, groups, by_lang: dict) -> dict:
    """{language: the paired comparison mine − theirs on that language's articles among `groups` (the languages of
    the articles mine and theirs score)} for each language of `by_lang` (a probe's `by_language`); None for a
    language too few to judge there or among those articles (fewer than min_group_articles: the fine-tuned model
    may have scored only some of the test articles)."""
    groups = np.asarray(groups).astype(str)
    return {lang: None if row["too_few"] or (groups == lang).sum() < cfg.min_group_articles else
            compared(cfg, mine[groups == lang], theirs[groups == lang]) for lang, row in by_lang.items()}


def add_model_differences(cfg, dataset, models: dict, best: tuple[str, str], groups) -> None:
    """Model against model: every probe's per-article test MAE minus that of the best model + probe (chosen on
    validation among the models that read every test language), paired on the same test articles, overall
    (`vs_best`) and per language (`by_language[lang]["vs_best"]`, not for a language too few to judge).
    `groups`: the test articles' languages (every variant scores the same articles)."""
    best_errors = test_errors(cfg, dataset, *best)[0]
    for name, entry in models.items():
        for kind, m in entry["probes"].items():
            if (name, kind) == best:
                continue
            mine, _ = test_errors(cfg, dataset, name, kind)
            m["vs_best"] = {"best": f"{best[0]} + {best[1]}", **compared(cfg, mine, best_errors)}
            for lang, d in per_language(cfg, mine, best_errors, groups, m["by_language"]).items():
                if d is not None:
                    m["by_language"][lang]["vs_best"] = d


def add_transfers(cfg, dataset, models: dict, context) -> None:
    """Cross-lingual transfer (train_probes.py --train-languages): each probe trained on some languages only, on
    each test language against the same probe trained on all of them and against the constant reference (the
    training median), paired on that language's test articles (`transfer`: [{train_languages, ..., per_language}])."""
    for name, entry in models.items():
        variant, test = None, None
        for kind, m in entry["probes"].items():
            record = context["trained"].get(name, {}).get(kind)
            for rec in (record.transfers if record else []):
                variant = variant or cfg.parse_variant(name)
                test = test if test is not None else load_checked(cfg, dataset, variant, "test")
                path = paths.transfer_probe(cfg, dataset.name, name, kind, rec.languages)
                probe, meta = load_trained(path, test, {s: context["data_sha256"][s] for s in ("train", "val")})
                if path.name != rec.file or (meta.get("train_languages") or {}).get("ids_sha256") != rec.ids_sha256:
                    raise StudyError(f"{path} is not the transfer probe the training summary records for {name} {kind}; "
                                     "rerun train_probes.py --train-languages ...")
                errors = article_mae(test["labels"], probe.predict(test["embeddings"]))
                full = test_errors(cfg, dataset, name, kind)[0]
                reference = article_mae(test["labels"], context["median_predictions"])
                groups = np.asarray(test["languages"]).astype(str)
                vs_all, vs_ref = (per_language(cfg, errors, other, groups, m["by_language"]) for other in (full, reference))
                per = {lang: {"n": row["n"], "mae": float(errors[groups == lang].mean()),
                              "mae_all": float(full[groups == lang].mean()), "too_few": row["too_few"],
                              "vs_all": vs_all[lang], "vs_reference": vs_ref[lang]}
                       for lang, row in m["by_language"].items()}
                m.setdefault("transfer", []).append(
                    {"train_languages": list(rec.languages), "n_train": rec.n_train, "n_val": rec.n_val,
                     "val_mae": rec.val_mae, "test_mae": float(errors.mean()), "file": rec.file, "per_language": per})
                print(f"[{name}] {kind:8s} trained on {'+'.join(rec.languages)} only: " + ", ".join(
                    f"{lang} {p['mae']:.4f} (all languages {p['mae_all']:.4f}"
                    + (f", {p['vs_all']['verdict']})" if p["vs_all"] else ", too few)") for lang, p in per.items()))


def seed_spread(meta: dict, test_scores: list, task) -> dict:
    """A probe's `seeds` record (study/schemas.py SeedRecord): how training used seeds (its metadata `seeds`:
    each member's validation score) with each member's `test_scores` (`task`'s headline metric of that member
    alone) and the spread of both. A deterministic probe is one member, itself."""
    rec = meta["seeds"]
    if len(test_scores) != rec["n"]:
        raise StudyError(f"a probe records {rec['n']} seeds but holds {len(test_scores)} members; rerun train_probes.py")
    return {**rec, "val_metric": task.validation_label, "test_metric": task.headline.name,
            "test": [None if t is None or not np.isfinite(t) else float(t) for t in test_scores],
            "val_spread": spread(rec["val"]), "test_spread": spread(test_scores)}


def spread(values) -> dict:
    """{"mean", "sd" (sample, ddof 1; None for one value), "min", "max"} of the defined values (None, NaN left out)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": None, "sd": None, "min": None, "max": None}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max())}


def said_seeds(rec: dict) -> str:
    """The console's note of a seed ensemble's spread: each seed alone on test, mean ± sd (range)."""
    t = rec["test_spread"]
    if not rec["stochastic"] or t["sd"] is None:   # one seed, or fewer than two defined scores
        return ""
    return (f"\n{'':10s}{rec['n']} seeds, each alone: {rec['test_metric']} {t['mean']:.4f} ± {t['sd']:.4f} "
            f"({t['min']:.4f}-{t['max']:.4f}); the probe is their ensemble")


def learning_curve(cfg, dataset, variant, kind, subsets: list, test: dict, full: tuple, context) -> list[dict]:
    """Test MAE of the probes trained on nested subsets of the training split (train_probes.py
    --train-fractions; `subsets`: their records in the training summary), then of the full-data probe
    (`full`: its test predictions, metrics, metadata and the probe), by training articles: [{fraction, n_train,
    test_mae, mae_ci95, val_mae, file, vs_previous, seed_spread}]. `vs_previous` (from the second point on) is the
    paired difference of per-article MAE against the point before, on the same test articles (`compared`);
    `seed_spread` (a seed ensemble) the test MAE of each seed's probe alone at that point.
    The last point also holds `vs_doubling`: the paired difference against the point of its last doubling
    (study/verdicts.py `doubling_reference`), its reading per doubling (`curve_reading`) and how far that reading
    holds under other bootstrap seeds and per seed (`curve_stability`)."""
    Y, X, names = test["labels"], test["embeddings"], test["dimension_names"]
    n_boot, seed = cfg.bootstrap_samples, cfg.random_seed
    points, errors, members = [], [], []
    for rec in sorted(subsets, key=lambda r: r.n_train):
        path = paths.subset_probe(cfg, dataset.name, variant.name, kind, rec.n_train)
        probe, meta = load_trained(path, test, {s: context["data_sha256"][s] for s in ("train", "val")})
        if path.name != rec.file or (meta.get("train_subset") or {}).get("ids_sha256") != rec.ids_sha256:
            raise StudyError(f"{path} is not the subset probe the training summary records for {variant.name} {kind}; "
                             "rerun train_probes.py --train-fractions ...")
        P = probe.predict(X)
        s = score_with_ci(Y, P, names, n_boot, seed, ci_method(cfg, len(Y)))
        points.append({"fraction": rec.fraction, "n_train": rec.n_train, "test_mae": s["overall_mae"],
                       "mae_ci95": s["mae_ci95"], "val_mae": meta["val_mae"], "file": path.name})
        errors.append(article_mae(Y, P))
        members.append(member_errors(probe, X, Y))
    P, m, meta, full_probe = full
    points.append({"fraction": 1.0, "n_train": int(meta["n_train"]), "test_mae": m["overall_mae"],
                   "mae_ci95": m["mae_ci95"], "val_mae": meta["val_mae"],
                   "file": paths.probe(cfg, dataset.name, variant.name, kind).name})
    errors.append(article_mae(Y, P))
    members.append(member_errors(full_probe, X, Y) if full_probe is not None else None)
    for point, each in zip(points, members):
        if each is not None:   # a seed ensemble: each seed's probe alone at this point (its ensemble is the point)
            point["seed_spread"] = spread([float(e.mean()) for e in each])
    if [p["n_train"] for p in points] != sorted({p["n_train"] for p in points}):
        raise StudyError(f"the subset probes of {variant.name} {kind} are not smaller than its full-data probe "
                         f"({[p['n_train'] for p in points]} articles); rerun train_probes.py --train-fractions ...")
    for i in range(1, len(points)):
        points[i]["vs_previous"] = {"n_train": points[i - 1]["n_train"], **compared(cfg, errors[i], errors[i - 1])}
    ref = doubling_reference([p["n_train"] for p in points])
    if ref is not None:
        d = compared(cfg, errors[-1], errors[ref])
        points[-1]["vs_doubling"] = {**d, **curve_reading(points[ref]["n_train"], points[-1]["n_train"],
                                                          d["mae_difference"], d["difference_ci95"],
                                                          cfg.equivalence_margin),
                                     **curve_stability(cfg, points[ref]["n_train"], points[-1]["n_train"],
                                                       (errors[ref], errors[-1]), (members[ref], members[-1]))}
    return points


def member_errors(probe, X, Y) -> list | None:
    """Per-article test MAE of each member of a seed ensemble alone; None for a deterministic probe."""
    if probe is None or not hasattr(probe, "member_outputs") or len(probe.member_outputs(X[:1])) < 2:
        return None
    return [article_mae(Y, P) for P in probe.member_outputs(X)]


def curve_stability(cfg, n_reference: int, n_last: int, errors: tuple, members: tuple) -> dict:
    """How far a learning curve's reading holds: read again under `CURVE_BOOTSTRAP_SEEDS` other bootstrap seeds
    (random_seed + 1, ...; `bootstrap_agreement`: the share giving the recorded reading), and for a seed ensemble
    with each seed's probe alone at both points (`seed_readings`; the recorded reading is the ensemble's, which pools
    the seeds: the mean of their predictions)."""
    def reading(mine, theirs, seed):
        d = paired_difference(mine, theirs, cfg.bootstrap_samples, seed)
        return curve_reading(n_reference, n_last, d["mae_difference"], d["difference_ci95"],
                             cfg.equivalence_margin)["reading"]

    said = reading(errors[1], errors[0], cfg.random_seed)
    again = [reading(errors[1], errors[0], cfg.random_seed + i) for i in range(1, CURVE_BOOTSTRAP_SEEDS + 1)]
    out = {"bootstrap_agreement": sum(r == said for r in again) / len(again), "seed_readings": None}
    if members[0] is not None and members[1] is not None and len(members[0]) == len(members[1]):
        out["seed_readings"] = [reading(last, first, cfg.random_seed) for first, last in zip(*members)]
    return out


def test_errors(cfg, dataset, variant: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(per-article test MAE, token counts) of a variant's probe, from the predictions file just written."""
    pred = read_npz(paths.predictions(cfg, dataset.name, variant, kind), "predictions", "rerun evaluate.py")
    return article_mae(pred["y_true"], pred["y_pred"]), pred["token_counts"]


def add_sweep_differences(cfg, dataset, models: dict) -> None:
    """Truncation sweep: each variant's per-article MAE minus the same model's longest variant's, same probe,
    paired on the same test articles (`vs_longest`): the controlled answer to "does truncation hurt?"."""
    for variants in sweep_groups(models).values():
        longest = max(variants, key=lambda v: models[v]["max_tokens"])
        for v in (v for v in variants if v != longest):
            for kind in set(models[v]["probes"]) & set(models[longest]["probes"]):
                errors = [test_errors(cfg, dataset, x, kind)[0] for x in (v, longest)]
                models[v]["probes"][kind]["vs_longest"] = {
                    "longest": longest, "max_tokens": models[longest]["max_tokens"], **compared(cfg, *errors)}


def add_layer_differences(cfg, dataset, models: dict) -> None:
    """Layer sweep: each layer variant's per-article MAE minus that of the same model's highest layer evaluated (the
    last layer when the sweep asked for it), same probe, paired on the same test articles (`vs_last`): does a
    middle layer beat the last?"""
    for variants in layer_groups(models).values():
        last = variants[-1]
        for v in variants[:-1]:
            for kind in set(models[v]["probes"]) & set(models[last]["probes"]):
                errors = [test_errors(cfg, dataset, x, kind)[0] for x in (v, last)]
                models[v]["probes"][kind]["vs_last"] = {"last": last, "layer": models[last]["layer"],
                                                        **compared(cfg, *errors)}


def add_probe_differences(cfg, dataset, models: dict, task: str = "regression") -> None:
    """Each probe against its model's probe chosen on validation, same test articles (`vs_chosen`: {"chosen",
    the paired difference with its verdict}): this probe's per-article MAE minus the chosen one's, or (yes/no,
    `task` classification) its test F1 minus the chosen one's on the same bootstrap resamples (`f1_difference`);
    the answer to "which probe?" that does not rest on overlapping marginal intervals."""
    for name, entry in models.items():
        chosen = entry["chosen_probe"]
        for kind in (k for k in entry["probes"] if k != chosen):
            if task == "classification":
                mine, theirs = (read_npz(paths.predictions(cfg, dataset.name, name, k), "predictions", "rerun evaluate.py")
                                for k in (kind, chosen))
                d = f1_difference(cfg, mine["y_true"], (mine["y_pred"], float(mine["threshold"])),
                                  (theirs["y_pred"], float(theirs["threshold"])))
            else:
                d = compared(cfg, test_errors(cfg, dataset, name, kind)[0], test_errors(cfg, dataset, name, chosen)[0])
            entry["probes"][kind]["vs_chosen"] = {"chosen": chosen, **d}


def add_chunk_differences(cfg, dataset, models: dict) -> None:
    """Chunked against truncated: each chunked variant `m-c<N>`'s per-article MAE minus that of `m` truncated at N
    tokens, same probe, paired on the same test articles, over all of them and over those the truncation cut
    (`vs_truncated`: {"truncated", "all", "cut"}; "cut" is None when no article was cut)."""
    for name, entry in models.items():
        twin = cfg.variant(entry["model"], entry["max_tokens"]).name if entry.get("chunked") else None
        for kind in set(entry["probes"]) & set(models[twin]["probes"]) if twin in models else ():
            (mine, _), (theirs, tokens) = (test_errors(cfg, dataset, x, kind) for x in (name, twin))
            cut = tokens > entry["max_tokens"]
            entry["probes"][kind]["vs_truncated"] = {
                "truncated": twin, "all": compared(cfg, mine, theirs),
                "cut": compared(cfg, mine[cut], theirs[cut]) if cut.any() else None}


def add_part_differences(cfg, dataset, models: dict) -> None:
    """A concatenation against each of its parts evaluated here: its per-article MAE minus the part's, same
    probe, same test articles (`vs_parts`: {part: paired difference}); below zero the pair is better."""
    for name, entry in models.items():
        for kind in entry["probes"]:
            parts = [p for p in entry.get("parts") or [] if kind in (models.get(p) or {}).get("probes", {})]
            if parts:
                mine = test_errors(cfg, dataset, name, kind)[0]
                entry["probes"][kind]["vs_parts"] = {p: compared(cfg, mine, test_errors(cfg, dataset, p, kind)[0])
                                                     for p in parts}


def cut_length(cfg, variant, cost: dict) -> int:
    """The token count beyond which a variant loses text: its max tokens, or for a chunked variant (and a
    side-by-side one) the tokens recorded by phase 1 (`token_capacity`: what the windows cover, or what its
    part reaching furthest covers)."""
    if not variant.chunked and not variant.parts:
        return variant.max_tokens
    capacity = (cost.get("test") or {}).get("token_capacity")
    if not isinstance(capacity, int):
        raise StudyError(f"the test cache of {variant.name} has no record of the tokens it covers; rerun "
                         f"embed_articles.py --models {variant.name}" + (" --force" if variant.chunked else ""))
    return capacity


def save_predictions(cfg, dataset, variant, kind, split, cache, P, cut_at: int, threshold: float | None = None) -> str:
    """One split's predictions beside what the error analysis needs; returns the file as recorded.
    A yes/no probe's predictions are P(yes), (n, 1), with the `threshold` it chose on validation."""
    path = paths.predictions(cfg, dataset.name, variant.name, kind, split)
    extra = {} if threshold is None else {"threshold": np.float64(threshold)}
    save_npz(path, ids=cache["ids"], y_true=cache["labels"],
             y_pred=P.astype(np.float32 if threshold is None else np.float64), languages=cache["languages"],
             token_counts=cache["token_counts"], titles=cache["titles"], max_tokens=np.int64(cut_at),
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
    tasks = {m.task_name for entry in trained.values() for m in entry.values()}
    if len(tasks) > 1:
        raise StudyError(f"{summary_path} mixes regression and classification probes; remove it and rerun "
                         "train_probes.py")
    found = tasks.pop() if tasks else dataset.task
    if dataset.task_source and found != dataset.task:
        raise StudyError(f"the probes in {summary_path} were trained for {found}, but {dataset.task_source} declares "
                         f"task {dataset.task}; rerun train_probes.py")
    return found


def binary_header(cfg, dataset, variant, test: dict, opts: BaselineOptions) -> dict:
    """The test set every model must share and the always-yes reference; the baseline F1 (--baseline-f1, else
    config.yaml / dataset.yaml)."""
    y = test["labels"].ravel()
    if opts.predictions or opts.mae is not None:
        raise StudyError("--baseline-predictions and --baseline-mae are for score datasets; a yes/no dataset "
                         "compares with a fine-tuned classifier's F1 (--baseline-f1, or baseline_f1 in config)")
    base, source = dataset.baseline_f1, f"{dataset.task_source} baseline_f1" if dataset.task_source else None
    if opts.f1 is not None:
        base, source = opts.f1, "--baseline-f1"
    counts = dict(zip(*np.unique(test["languages"], return_counts=True)))
    return {"task": "classification", "n_test": int(len(y)), "dimension_names": test["dimension_names"],
            "positive_rate": float(y.mean()),
            "language_counts": {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))},
            "always_yes": always_yes(y, cfg.bootstrap_samples, cfg.random_seed),
            "baseline_f1": base, "baseline_source": source if base else None, "baseline_n": baseline_n(dataset, opts)}


def _yes_no_measures(cfg, context, test: tuple, val: tuple, trained: tuple, cut_at: int) -> dict:
    """What a yes/no probe's test P(yes) measure (`test`: (cache, P(yes)); `trained`: (probe, metadata)): F1,
    precision, recall and ROC AUC at the threshold it chose on validation with their CIs (per language and
    truncation), and its test F1 against saying yes to every article, paired."""
    (tc, p), (probe, _) = test, trained
    return {**score_binary(tc["labels"], p, probe.threshold_, languages=tc["languages"],
                           token_counts=tc["token_counts"], max_tokens=cut_at, n_boot=cfg.bootstrap_samples,
                           seed=cfg.random_seed),
            "vs_always_yes": f1_difference(cfg, tc["labels"], (p, probe.threshold_), SAY_YES)}


SAY_YES = "always yes"   # f1_difference's `theirs` for saying yes to every article


def member_f1s(probe, test: dict, val: dict) -> list:
    """Test F1 of each member of a yes/no seed ensemble alone, at the threshold that maximises that member's own
    validation F1 (as a single-seed probe chooses it)."""
    thresholds = [best_f1_threshold(val["labels"], pv)[0] for pv in probe.member_outputs(val["embeddings"])]
    return [binary_scores(test["labels"], p, t)["f1"]
            for p, t in zip(probe.member_outputs(test["embeddings"]), thresholds)]


def f1_difference(cfg, y, mine: tuple, theirs) -> dict:
    """Test F1 of `mine` (P(yes), threshold) minus that of `theirs` (another probe's (P(yes), threshold), or
    SAY_YES) on the same articles, paired on the same bootstrap resamples of the test articles, read by the
    comparison rule (higher is better, margin `equivalence_margin_f1`)."""
    y = np.asarray(y).ravel().astype(bool)
    (p, threshold), (q, other) = mine, ((np.ones(len(y)), 0.5) if theirs == SAY_YES else theirs)
    p, q = (np.asarray(a, dtype=np.float64).ravel() for a in (p, q))

    def gain(idx):
        return binary_scores(y[idx], p[idx], threshold)["f1"] - binary_scores(y[idx], q[idx], other)["f1"]

    ci = bootstrap_statistic(gain, len(y), cfg.bootstrap_samples, cfg.random_seed)
    d = gain(np.arange(len(y)))
    reading = paired_reading(None if not np.isfinite(d) else float(d), ci, cfg.equivalence_margin_f1, "higher")
    return {**reading, "verdict": _judged(cfg, len(y), reading["verdict"])}


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


@dataclass(frozen=True)
class _Scoring:
    """What differs in scoring a probe between the tasks (study/tasks.py); `score_variant` shares the rest."""
    predict: Callable   # (probe, embeddings) -> its predictions: the scores, or P(yes)
    measure: Callable   # (cfg, context, (test cache, P), (val cache, P_val), (probe, metadata), cut_at) -> its figures
    members: Callable   # (seed ensemble, test cache, val cache) -> each seed's headline metric alone on test
    said: Callable      # (its record) -> the console's figures after the headline metric


_SCORING = {   # by task: the one place it decides
    SCORES.name: _Scoring(
        predict=lambda probe, X: probe.predict(X), measure=_score_measures, members=member_maes,
        said=lambda m: (f"RMSE {m['overall_rmse']:.4f}  Spearman {m['overall_spearman']:.3f}  "
                        f"(val MAE {m['val_mae']:.4f})")),
    YES_NO.name: _Scoring(
        predict=lambda probe, X: probe.predict_proba(X)[:, 1], measure=_yes_no_measures, members=member_f1s,
        said=lambda m: (f"precision {_fmt(m['precision'])}  recall {_fmt(m['recall'])}  AUC {_fmt(m['roc_auc'])}  "
                        f"(threshold {m['threshold']:.3f}; val log-loss {m['val_log_loss']:.4f}, "
                        f"val F1 {m['val_f1']:.4f})")),
}
