"""Phase 2 as one function: `train(cfg, dataset, options)` fits the probes of every variant on its cached
train/val embeddings (every choice made on validation), writes each probe's file and merges it into the training
summary, and returns the typed summary it wrote (study/schemas.py `TrainingSummary`) with the files written.
train_probes.py parses its command line into `Options`, calls it and prints; tests call it directly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from study import paths
from study.artifacts import locked, save_pickle
from study.cache import load_checked
from study.config import task_probes, with_teacher_twins
from study.data import UNLABELLED, load_teacher_predictions
from study.embedders import resolve_device
from study.embedding import embedding_recipe
from study.errors import StudyError
from study.probes import (DEFAULT_HIDDEN, fit_warnings, ids_sha256, make_probe, nested_subsets, seed_record,
                          with_teacher_rows)
from study.provenance import record
from study.schemas import TrainingSummary, merge_record, read_record
from study.selection import describe_selected
from study.tasks import task


SUMMARY_REMEDY = ("remove it and rerun train_probes.py (it lists the probes trained so far; retraining them "
                  "writes it anew)")


@dataclass(frozen=True)
class Options:
    """What train_probes.py's command line chooses (None or empty: the default it documents)."""
    models: tuple[str, ...] | None = None        # --models (default: config default_models)
    max_tokens: tuple[int, ...] | None = None    # --max-tokens
    probes: tuple[str, ...] | None = None        # --probes (default: the task's)
    train_fractions: tuple[float, ...] = ()      # --train-fractions: the learning curve's subsets
    train_languages: tuple[str, ...] = ()        # --train-languages: the transfer probes' languages
    mlp_device: str = "auto"                     # --mlp-device
    teacher_predictions: str | None = None       # --teacher-predictions


@dataclass(frozen=True)
class Trained:
    """What phase 2 wrote: the training summary's path, its typed record (every probe it lists, this run's and
    earlier ones'), and the probe files this run wrote."""
    path: Path
    record: TrainingSummary
    probes: tuple[Path, ...]


def train(cfg, dataset, options: Options = Options(), log: Callable[[str], None] = tqdm.write) -> Trained:
    """Phase 2 of one dataset: each probe of each variant fitted (with its learning-curve subsets, transfer probe
    and teacher twin where asked), its file written and merged into the training summary. Everything that would
    stop the run part way is checked before the first write. `log` gets each fit's line (and warnings)."""
    variants = teacher_twins(cfg.select_variants(options.models, options.max_tokens),
                             options.teacher_predictions)
    probes = task_probes(dataset.task, list(options.probes) if options.probes else None)
    fractions, languages = list(options.train_fractions), list(options.train_languages)
    if fractions and not task(dataset.task).has("learning_curve"):
        raise StudyError(f"--train-fractions: the learning curve is measured in test MAE, on score datasets; "
                         f"{dataset.name} has yes/no labels")
    device = str(resolve_device(options.mlp_device))
    summary_path = paths.training_summary(cfg, dataset.name)

    if summary_path.exists():   # a damaged summary stops the run before any probe file is replaced
        read_record(summary_path, TrainingSummary, "training summary", SUMMARY_REMEDY)
    check_before_writing(cfg, dataset, variants, probes, fractions, languages)
    teacher = teacher_inputs(cfg, dataset, variants, options.teacher_predictions, log)
    written = []
    with tqdm(total=len(variants) * len(probes), desc="probes", unit="probe") as bar:
        for variant in variants:
            train_cache = load_checked(cfg, dataset, variant, "train")
            val = load_checked(cfg, dataset, variant, "val")
            if variant.teacher:
                for kind in probes:
                    bar.set_postfix_str(f"{variant.name} {kind}")
                    log(fit_and_save(cfg, dataset, variant, kind, train_cache, val, device, summary_path,
                                     teacher=teacher[variant.name]))
                    written.append(paths.probe(cfg, dataset.name, variant.name, kind))
                    bar.update()
                continue
            subsets = nested_subsets(len(train_cache["labels"]), fractions, cfg.random_seed)
            if fractions:
                sizes = "".join(f"{x['n_train']} ({x['fraction']:g}), " for x in subsets)
                log(f"[{variant.name}] learning curve: {sizes}then all {len(train_cache['labels'])} training "
                    "articles (the normal probe)")
            for kind in probes:
                bar.set_postfix_str(f"{variant.name} {kind}")
                log(fit_and_save(cfg, dataset, variant, kind, train_cache, val, device, summary_path))
                written.append(paths.probe(cfg, dataset.name, variant.name, kind))
                records = []
                for subset in subsets:
                    bar.set_postfix_str(f"{variant.name} {kind} n={subset['n_train']}")
                    line, rec = fit_subset(cfg, dataset, variant, kind, train_cache, val, device, subset)
                    records.append(rec)
                    written.append(paths.subset_probe(cfg, dataset.name, variant.name, kind, subset["n_train"]))
                    log(line)
                if records:   # the full-data probe's entry was written with an empty list first
                    merge_record(summary_path, TrainingSummary, {"dataset": dataset.name, "models": {
                        variant.name: {kind: {"train_subsets": records}}}}, SUMMARY_REMEDY)
                if languages:
                    bar.set_postfix_str(f"{variant.name} {kind} on {'+'.join(languages)}")
                    line, rec = fit_transfer(cfg, dataset, variant, kind, train_cache, val, device, languages)
                    written.append(paths.transfer_probe(cfg, dataset.name, variant.name, kind, languages))
                    log(line)
                    merge_record(summary_path, TrainingSummary, {"dataset": dataset.name, "models": {
                        variant.name: {kind: {"transfers": [rec]}}}}, SUMMARY_REMEDY)
                bar.update()
    return Trained(summary_path, read_record(summary_path, TrainingSummary, "training summary", SUMMARY_REMEDY),
                   tuple(written))


def teacher_twins(variants, teacher_file) -> list:
    """`variants` and, with --teacher-predictions, each one's teacher twin `<variant>+teacher` after it; a teacher
    variant named in --models needs the teacher's scores."""
    named = next((v.name for v in variants if v.teacher), None)
    if named and not teacher_file:
        raise StudyError(f"--models {named}: a teacher variant is trained from the fine-tuned model's scores; "
                         "give --teacher-predictions FILE")
    return with_teacher_twins(variants) if teacher_file else variants


def teacher_inputs(cfg, dataset, variants, teacher_file, log=print) -> dict:
    """{teacher variant: {"embeddings", "scores", "record"}}: the unlabelled articles the teacher scored, their
    embeddings (the base variant's `unlabelled` cache) and scores, and what the training summary records of them.
    StudyError, before anything is written, without unlabelled.jsonl or when the teacher scored none of it."""
    out = {}
    for variant in (v for v in variants if v.teacher):
        if dataset.task != "regression":
            raise StudyError("--teacher-predictions: teacher scores train score probes; "
                             f"{dataset.name} has yes/no labels")
        source = dataset.path / f"{UNLABELLED}.jsonl"
        if not source.is_file():
            raise StudyError(f"--teacher-predictions: {source} does not exist (the articles the teacher scored that "
                             "have no label: the article format without 'labels'; then run embed_articles.py)")
        unl = load_checked(cfg, dataset, variant, UNLABELLED)
        caches = [load_checked(cfg, dataset, variant, s) for s in ("train", "val", "test")]
        teacher = load_teacher_predictions(teacher_file, unl["dimension_names"], cfg.score_range,
                                           known_ids=[i for c in (unl, *caches) for i in c["ids"]])
        rows, scores = teacher.rows(unl["ids"])
        if not len(rows):
            raise StudyError(f"{teacher_file}: scores none of the {len(unl['ids'])} articles of {source} (matched "
                             "by article_ids)")
        n_labelled = len(caches[0]["ids"])
        out[variant.name] = {
            "embeddings": unl["embeddings"][rows], "scores": scores.astype(np.float32),
            "record": {"file": str(teacher.path), "sha256": teacher.sha256,
                       "unlabelled_sha256": unl["fingerprint"]["data_sha256"], "n_labelled": int(n_labelled),
                       "n_teacher": int(len(rows)), "ids_sha256": ids_sha256(unl["ids"][rows])}}
        log(f"[{variant.name}] {n_labelled} labelled training articles + {len(rows)} of {len(unl['ids'])} "
              f"unlabelled articles with the teacher's scores ({teacher.path.name}); teacher weight chosen on "
              f"validation among {', '.join(f'{w:g}' for w in cfg.teacher_weights)}")
    return out


def min_train_rows(kind: str, settings) -> int:
    """The fewest training articles a probe can be fitted on: 2 (one article is no probe); LightGBM with
    bagging needs one article in each bag (subsample x n >= 1)."""
    if kind == "lightgbm":
        params = settings.params
        share = params.get("subsample", params.get("bagging_fraction", 1.0))
        every = params.get("subsample_freq", params.get("bagging_freq", 0))
        if isinstance(share, (int, float)) and 0 < share < 1 and isinstance(every, (int, float)) and every > 0:
            return max(2, math.ceil(1 / share - 1e-9))
    return 2


def language_rows(cache: dict, languages) -> np.ndarray:
    """The rows of a split's cache whose language is one of `languages`, in order."""
    return np.flatnonzero(np.isin(np.asarray(cache["languages"]).astype(str), list(languages)))


def check_before_writing(cfg, dataset, variants, probes, fractions, train_languages=None) -> None:
    """What would stop the run part way, checked before its first write: every variant's train and val cache
    (present, made from the current data and settings, sound), each probe's settings, the training articles of
    every probe, learning-curve subset and language subset, and for yes/no labels both labels in the training
    split."""
    for variant in variants:
        train, val = (load_checked(cfg, dataset, variant, s) for s in ("train", "val"))
        if train["dimension_names"] != val["dimension_names"]:
            raise StudyError(f"train and val embeddings of {variant.name} disagree on dimension_names")
        if train["embeddings"].shape[1] != val["embeddings"].shape[1]:
            raise StudyError(f"train and val embeddings of {variant.name} differ in width "
                             f"({train['embeddings'].shape[1]} and {val['embeddings'].shape[1]}); rerun "
                             f"embed_articles.py --force --models {variant.name}")
        n = len(train["labels"])
        if dataset.task == "classification" and len(set(train["labels"].ravel().tolist())) < 2:
            raise StudyError(f"{dataset.path / 'train.jsonl'}: a yes/no probe needs both labels in the training "
                             f"split, found only {int(train['labels'].ravel()[0])}")
        sizes = [(x["n_train"], f"--train-fractions {x['fraction']:g}") for x in
                 nested_subsets(n, fractions, cfg.random_seed)] + [(n, "the training split")]
        if train_languages:
            if dataset.task != "regression":
                raise StudyError("--train-languages: the transfer is measured in test MAE per language, on score "
                                 f"datasets; {dataset.name} has yes/no labels")
            found = sorted(set(np.asarray(train["languages"]).astype(str)))
            rows, val_rows = language_rows(train, train_languages), language_rows(val, train_languages)
            if len(rows) == n:
                raise StudyError(f"--train-languages {' '.join(train_languages)}: every training article is in these "
                                 f"languages, nothing is left to transfer to (training languages: {', '.join(found)})")
            if not len(val_rows):
                raise StudyError(f"--train-languages {' '.join(train_languages)}: no validation article is in these "
                                 f"languages, so nothing can be chosen on validation (training languages: "
                                 f"{', '.join(found)})")
            sizes.append((len(rows), f"--train-languages {' '.join(train_languages)}"))
        for kind in probes:
            settings = getattr(cfg.probe_methods, kind)
            make_probe(kind, settings, score_range=cfg.score_range, seed=cfg.random_seed, task=dataset.task)
            need = min_train_rows(kind, settings)
            small = [(k, what) for k, what in sizes if k < need]
            if small:
                k, what = small[0]
                raise StudyError(f"{what} gives {variant.name} {kind} {k} training article{'s' * (k != 1)} of {n}; "
                                 f"{kind} needs at least {need}" + (" (subsample x articles >= 1)" if need > 2 else ""))


def fit(cfg, dataset, variant, kind, train, val, device, subset=None, train_languages=None, teacher=None):
    """(fitted probe, its metadata): on every training row, or on `subset`'s rows (see nested_subsets), or on the
    training and validation rows of `train_languages` only, or (`teacher`, from teacher_inputs) on every training
    row plus the teacher-scored unlabelled articles at each of config `teacher_weights`, the one with the lowest
    validation MAE kept. The MLP and LightGBM are seed ensembles of cfg.seeds_for(dataset) members (config
    `probe_seeds`)."""
    settings = getattr(cfg.probe_methods, kind)

    def fitted_on(X, Y, Xv, Yv, weight=None):
        probe = make_probe(kind, settings, score_range=cfg.score_range, seed=cfg.random_seed, device=device,
                           task=dataset.task, n_seeds=cfg.seeds_for(dataset.path))
        return probe.fit(X, Y, Xv, Yv, **({} if weight is None else {"sample_weight": weight}))

    X, Y = train["embeddings"], train["labels"]
    Xv, Yv = val["embeddings"], val["labels"]
    if subset is not None:
        X, Y = X[subset["rows"]], Y[subset["rows"]]
    if train_languages:
        rows, val_rows = language_rows(train, train_languages), language_rows(val, train_languages)
        X, Y, Xv, Yv = X[rows], Y[rows], Xv[val_rows], Yv[val_rows]
    if teacher is None:
        probe = fitted_on(X, Y, Xv, Yv)
    else:   # each weight of a teacher-scored article; the lowest validation MAE (on labels) wins, ties the lighter
        tried = {}
        for w in cfg.teacher_weights:
            Xt, Yt, weights = with_teacher_rows(X, Y, teacher["embeddings"], teacher["scores"], w)
            tried[w] = fitted_on(Xt, Yt, Xv, Yv, weights)
        weight = min(tried, key=lambda w: (tried[w].val_mae_, w))
        probe, seconds = tried[weight], sum(p.fit_seconds_ for p in tried.values())
        probe.fit_seconds_ = seconds
    fitted = ({"task": "classification", "val_log_loss": probe.val_log_loss_, "val_f1": probe.val_f1_,
               "threshold": probe.threshold_} if dataset.task == "classification" else {"val_mae": probe.val_mae_})
    metadata = {
        "dataset": dataset.name, "model": variant.model, "variant": variant.name, "probe": kind,
        "dimension_names": train["dimension_names"], "embedding": embedding_recipe(cfg, variant),
        "data_sha256": {s: d["fingerprint"]["data_sha256"] for s, d in (("train", train), ("val", val))},
        "embedding_fingerprint": train["fingerprint"], "val_embedding_fingerprint": val["fingerprint"],
        "hyperparameters": settings.model_dump(), "selected": probe.selected(), "seeds": seed_record(probe),
        "warnings": fit_warnings(kind, probe.selected(), train["dimension_names"]),
        **fitted, "train_seconds": probe.fit_seconds_,
        "n_train": int(len(Y)) + (len(teacher["scores"]) if teacher else 0), "n_val": int(len(Yv)),
        "embedding_dim": int(train["embeddings"].shape[1]), "random_seed": cfg.random_seed,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "provenance": record(device),
    }
    if subset is not None:
        metadata["train_subset"] = {
            "fraction": subset["fraction"], "n_train": subset["n_train"], "of": int(len(train["labels"])),
            "seed": cfg.random_seed, "ids_sha256": ids_sha256(train["ids"][subset["rows"]]),
            "rule": "the first ceil(fraction x n) rows of one permutation of the training rows seeded with random_seed"}
    if teacher is not None:
        metadata["teacher"] = {**teacher["record"], "weight": float(weight),
                               "val_mae_by_weight": {f"{w:g}": float(p.val_mae_) for w, p in tried.items()}}
    if train_languages:
        metadata["train_languages"] = {"languages": sorted(train_languages), "n_train": int(len(Y)),
                                       "n_val": int(len(Yv)), "ids_sha256": ids_sha256(train["ids"][rows])}
    return probe, metadata


def fit_and_save(cfg, dataset, variant, kind, train, val, device, summary_path, teacher=None) -> str:
    """Fit one probe (choices on validation), write its file and its summary entry; returns the log line.
    `teacher`: a teacher variant's inputs (teacher_inputs)."""
    settings = getattr(cfg.probe_methods, kind)
    probe, metadata = fit(cfg, dataset, variant, kind, train, val, device, teacher=teacher)
    path = paths.probe(cfg, dataset.name, variant.name, kind)
    summary = {k: v for k, v in metadata.items() if k != "val_embedding_fingerprint"}
    with locked(path):   # a run side by side cannot slip its probe between this file and its summary entry
        digest = save_pickle(path, probe.to_bundle(metadata))
        merge_record(summary_path, TrainingSummary, {"dataset": dataset.name, "models": {
            variant.name: {kind: {**summary, "file": path.name, "sha256": digest, "train_subsets": [],
                                  "transfers": []}}}},
            SUMMARY_REMEDY)
    line = (f"[{variant.name}] {kind}: {said(probe, dataset.task, metadata['seeds'])} in {probe.fit_seconds_:.1f}s "
            f"({describe_selected(probe.selected())}"
            + (f"; teacher weight {metadata['teacher']['weight']:g}" if teacher else "")
            + f") -> {path.name}") + warning_lines(variant, metadata)
    if kind == "mlp" and list(settings.hidden_sizes) != DEFAULT_HIDDEN:
        line += (f"\nnote: hidden sizes {settings.hidden_sizes} differ from {DEFAULT_HIDDEN}: a serving stage that "
                 "assumes the default layout cannot load this MLP (build it from model_config)")
    return line


def said(probe, task: str, seeds: dict) -> str:
    """A fitted probe's validation figures, for its log line; for a seed ensemble also its members' spread."""
    if task == "classification":
        out = f"val log-loss {probe.val_log_loss_:.4f}, val F1 {probe.val_f1_:.4f} at threshold {probe.threshold_:.3f}"
    else:
        out = f"val MAE {probe.val_mae_:.4f}"
    if seeds["stochastic"] and seeds["n"] > 1:
        v = np.asarray(seeds["val"])
        out += (f" (ensemble of {seeds['n']} seeds; each seed alone {v.mean():.4f} ± {v.std(ddof=1):.4f}, "
                f"{v.min():.4f}-{v.max():.4f})")
    return out


def warning_lines(variant, metadata: dict) -> str:
    """The fit's degenerate choices (probes.fit_warnings), one 'warning:' line each after the result line."""
    return "".join(f"\nwarning: [{variant.name}] {w}" for w in metadata["warnings"])


def fit_subset(cfg, dataset, variant, kind, train, val, device, subset) -> tuple[str, dict]:
    """Fit one learning-curve probe on `subset` and write its file; (log line, its `train_subsets` record)."""
    probe, metadata = fit(cfg, dataset, variant, kind, train, val, device, subset)
    path = paths.subset_probe(cfg, dataset.name, variant.name, kind, subset["n_train"])
    digest = save_pickle(path, probe.to_bundle(metadata))
    rec = {"fraction": subset["fraction"], "n_train": subset["n_train"], "file": path.name, "sha256": digest,
           "ids_sha256": metadata["train_subset"]["ids_sha256"], "val_mae": probe.val_mae_,
           "selected": probe.selected(), "seeds": metadata["seeds"], "warnings": metadata["warnings"],
           "train_seconds": probe.fit_seconds_}
    line = (f"[{variant.name}] {kind} on {subset['n_train']} articles ({subset['fraction']:g}): "
            f"{said(probe, dataset.task, metadata['seeds'])} in {probe.fit_seconds_:.1f}s "
            f"({describe_selected(probe.selected())}) -> {path.name}") + warning_lines(variant, metadata)
    return line, rec


def fit_transfer(cfg, dataset, variant, kind, train, val, device, languages) -> tuple[str, dict]:
    """Fit one probe on the training and validation articles of `languages` only and write its file; (log line,
    its `transfers` record)."""
    probe, metadata = fit(cfg, dataset, variant, kind, train, val, device, train_languages=languages)
    path = paths.transfer_probe(cfg, dataset.name, variant.name, kind, languages)
    digest = save_pickle(path, probe.to_bundle(metadata))
    t = metadata["train_languages"]
    rec = {**t, "file": path.name, "sha256": digest, "val_mae": probe.val_mae_, "selected": probe.selected(),
           "seeds": metadata["seeds"], "warnings": metadata["warnings"], "train_seconds": probe.fit_seconds_}
    line = (f"[{variant.name}] {kind} on {'+'.join(t['languages'])} only ({t['n_train']} training, {t['n_val']} "
            f"validation articles): {said(probe, dataset.task, metadata['seeds'])} in {probe.fit_seconds_:.1f}s "
            f"-> {path.name}") + warning_lines(variant, metadata)
    return line, rec
