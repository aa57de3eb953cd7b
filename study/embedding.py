"""Phase 1 as one function, `embed(cfg, dataset, options)`: every chosen variant's split caches made or found
valid, returned as `Embedded` (per variant and split: the cache and whether this run computed it).
embed_articles.py parses its command line into `Options`, calls it and prints; tests call it directly.

Its steps, one function each: the split-leak check, which caches are stale, and embedding one variant's stale
splits (checkpointed, then saved with its fingerprint and cost); a concatenation `a+b` is study/cache.py
`concatenate` (nothing embedded).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from study import paths
from study.backends import parse_backend, with_backend
from study.cache import Checkpoint, concatenate, fingerprint, save_embeddings, status
from study.config import with_parts
from study.data import TEXT_RECIPE, load_splits, split_leaks, splits_present
from study.embedders import (batching_for, describe_batching, embed_texts, enable_packing, load_model, resolve_device,
                             resolve_dtype, split_layers, use_all_cores, with_layers)
from study.errors import StudyError
from study.provenance import model_revision
from study.schemas import DataChecks, write_record


def report_leaks(cfg, dataset, splits) -> None:
    """Say (and record for the report) which articles appear in more than one split."""
    leaks = split_leaks(splits)
    if len(splits) > 1:
        write_record(paths.data_checks(cfg, dataset.name), DataChecks,
                     {"dataset": dataset.name, "splits": list(splits), "split_leaks": leaks})
    if leaks["same_id"] or leaks["same_text"]:
        print(f"warning: articles in more than one split: {leaks['same_id']} by id, {leaks['same_text']} by title + "
              "content; e.g. " + "; ".join(f"{'/'.join(e['splits'])}: {', '.join(e['ids'])}" for e in leaks["examples"]))


def stale_splits(cfg, dataset, variant, splits, dtype, force, backend: str = "torch") -> list:
    """(split, cache path, fingerprint) of each split whose cache is missing, out of date or --force'd."""
    todo = []
    for split in splits:
        path = paths.embedding_cache(cfg, dataset.name, variant.name, split.name)
        expected = fingerprint(cfg, variant, dtype, split.name, split.sha256, backend)
        if path.exists() and not force:
            why = status(path, expected)
            if why is None:
                print(f"[{variant.name}] {split.name}: cache is valid, skipped ({path.name})")
                continue
            print(f"[{variant.name}] {split.name}: cache out of date ({why}), rebuilding")
        todo.append((split, path, expected))
    return todo


def layer_groups(variants) -> list[list]:
    """`variants` in order, the layer variants of one model at one max tokens gathered into one group (embedded by
    one forward pass), every other variant a group of its own."""
    groups: dict = {}
    for v in variants:
        groups.setdefault((v.model, v.max_tokens, "layers") if v.layer is not None else v.name, []).append(v)
    return list(groups.values())


@dataclass(frozen=True)
class EmbedOptions:
    """What embed_articles.py's command line decides about the encode loop."""
    batch_size: int | None = None          # None: the model's batch_size from config (or config batch_size)
    devices: tuple[str, ...] = ()          # --devices: several GPUs, one process each; (): the one device given
    packed: bool = False                   # padding-free batches (BERT / XLM-R encoders)
    backend: str = "torch"                 # --backend / --int8: the encoder's runtime (study/backends.py)


@dataclass(frozen=True)
class Options:
    """What embed_articles.py's command line chooses (None: the default it documents)."""
    models: tuple[str, ...] | None = None       # --models (default: config default_models)
    max_tokens: tuple[int, ...] | None = None   # --max-tokens
    chunks: bool = False                        # --chunks: each model's chunked twin too
    layers: tuple[int, ...] | None = None       # --layers: each model at these hidden layers instead
    splits: tuple[str, ...] | None = None       # --splits (default: train val test, unlabelled where present)
    device: str | None = None                   # --device (default: config device; --devices' first when given)
    dtype: str | None = None                    # --dtype (default: float32 on CPU, bf16 / fp16 on CUDA)
    force: bool = False                         # --force: rebuild valid caches too
    encode: EmbedOptions = field(default_factory=EmbedOptions)   # the encode loop's: batch size, devices, ...


@dataclass(frozen=True)
class Cache:
    """One split's embedding cache of one variant after phase 1."""
    variant: str
    split: str
    path: Path
    computed: bool   # made (or rebuilt) by this run; False: its fingerprint matched and it was reused as it was


@dataclass(frozen=True)
class Embedded:
    """What phase 1 did: the device and dtype it ran with, each variant's split caches (the parts of a pair first,
    then the pair; the splits in order)."""
    device: str
    dtype: str
    caches: tuple[Cache, ...]

    @property
    def computed(self) -> tuple[Cache, ...]:
        return tuple(c for c in self.caches if c.computed)

    @property
    def reused(self) -> tuple[Cache, ...]:
        return tuple(c for c in self.caches if not c.computed)


def embed(cfg, dataset, options: Options = Options()) -> Embedded:
    """Phase 1 of one dataset: the chosen variants' caches of its splits, embedded where missing, out of date or
    forced (the layers of one model from one forward pass, a pair from its parts' caches), reused where valid."""
    variants = with_parts(cfg.select_variants(options.models, options.max_tokens,
                                              chunks=options.chunks,
                                              layers=options.layers))
    splits = load_splits(dataset, cfg.score_range, tuple(options.splits or splits_present(dataset)))
    report_leaks(cfg, dataset, splits)
    devices = options.encode.devices
    device = resolve_device(devices[0] if devices else (options.device or cfg.device))
    dtype = resolve_dtype(device, options.dtype)
    if device.type == "cpu":
        print(f"device cpu ({use_all_cores()} threads), dtype {dtype}")
    else:
        print(f"device {', '.join(devices or [str(device)])}, dtype {dtype}")

    caches = []
    for group in layer_groups(variants):   # the layers of one model at one max tokens: one forward pass
        if group[0].parts:
            for split in splits.values():
                path, computed = concatenate(cfg, dataset, group[0], split, options.force)
                caches.append(Cache(group[0].name, split.name, path, computed))
            continue
        jobs = [(v, todo) for v in group if (todo := stale_splits(cfg, dataset, v, splits.values(), dtype,
                                                                  options.force, options.encode.backend))]
        if jobs:
            embed_variants(cfg, dataset, jobs, device, dtype, options.encode)
        stale = {(v.name, split.name) for v, todo in jobs for split, _, _ in todo}
        caches += [Cache(v.name, s, paths.embedding_cache(cfg, dataset.name, v.name, s), (v.name, s) in stale)
                   for v in group for s in splits]
    return Embedded(str(device), dtype, tuple(caches))


def embed_variants(cfg, dataset, jobs, device, dtype, opts: EmbedOptions = EmbedOptions()) -> None:
    """Embed the stale splits of one model variant, or of several layer variants of one model at one max tokens
    (`jobs`: [(variant, todo from stale_splits)]), and save their caches. The layer variants of a split come from
    one forward pass (`with_layers`): each cache records the cost of that shared pass."""
    devices = list(opts.devices) or None
    variant = jobs[0][0]
    assert all((v.model, v.max_tokens) == (variant.model, variant.max_tokens) for v, _ in jobs)
    assert len(jobs) == 1 or all(v.layer is not None for v, _ in jobs)
    label = variant.name if len(jobs) == 1 else f"{cfg.variant(variant.model, variant.max_tokens).name} layers " + \
        " ".join(str(v.layer) for v, _ in jobs)
    spec, t_load = cfg.model(variant.model), time.perf_counter()
    location = cfg.model_location(variant.model)
    encoder = load_model(spec, location, device if not devices else resolve_device("cpu"), dtype,
                         variant.model, variant.max_tokens)
    if opts.packed:
        encoder = enable_packing(encoder)
    backend = opts.backend
    if backend != "torch":
        if (devices and len(devices) > 1) or variant.layer is not None:
            raise StudyError(f"--backend {backend} runs the model's own output in this process: not with --layers or "
                             "several --devices")
        encoder = with_backend(encoder, *parse_backend(backend), paths.runtime_models(cfg), location,
                               model_revision(location))
    if encoder.dim != spec.dimensions:
        raise StudyError(f"model '{variant.model}' gives {encoder.dim}-dim embeddings but config.yaml says "
                         f"dimensions: {spec.dimensions}")
    if variant.layer is not None:
        with_layers(encoder, [v.layer for v, _ in jobs])   # stops on a layer out of range before any work
    model_revision.cache_clear()   # a hub model downloaded just now has a revision now
    for _, todo in jobs:
        for _, _, expected in todo:
            expected.update({"revision": model_revision(location)} if model_revision(location) else {})
    rows, budget = batching_for(device, spec.batch_size or cfg.batch_size, spec.token_budget, variant.max_tokens)
    rows = opts.batch_size or rows
    batching = describe_batching(rows, budget, encoder.packed)
    print(f"[{label}] loaded {location} in {time.perf_counter() - t_load:.1f}s "
          f"(pooling {encoder.pooling}, normalize {encoder.normalize}, max tokens {variant.max_tokens}"
          + (f", backend {encoder.backend}" if encoder.backend != "torch" else "") + f"); {batching}")
    load_spec = dict(source=spec.source, location=location, dtype=dtype, trust_remote_code=spec.trust_remote_code,
                     normalize=spec.normalize, packed=encoder.packed)
    chunks = cfg.chunking.model_dump() if variant.chunked else None
    splits = {}
    for v, todo in jobs:
        for split, path, expected in todo:
            splits.setdefault(split.name, (split, []))[1].append((v, path, expected))
    for split, outputs in splits.values():
        texts = split.texts
        layers = [v.layer for v, _, _ in outputs] if variant.layer is not None else []
        enc = with_layers(encoder, layers) if layers else encoder
        first_path, first_fp = outputs[0][1], outputs[0][2]
        checkpoint = None if devices and len(devices) > 1 else \
            Checkpoint(first_path, first_fp if len(outputs) == 1 else {"layers": [fp for _, _, fp in outputs]})
        with tqdm(total=len(texts), desc=f"{label} {split.name}", unit="article") as bar:
            emb, counts, stats = embed_texts(
                enc, texts, max_tokens=variant.max_tokens, batch_size=rows, token_budget=budget,
                progress=bar, devices=devices, load_spec=load_spec,
                checkpoint=checkpoint, chunks=chunks, prefix=spec.prefix)
        record = {"seconds": stats.encode_s + stats.tokenize_s, "articles_per_s": stats.articles_per_s,
                  "tokens_per_s": stats.tokens_per_s, "devices": stats.devices, "dtype": dtype,
                  "batching": batching, "packed": encoder.packed, "tokenize_seconds": stats.tokenize_s,
                  "backend": encoder.backend}
        if chunks:
            record.update(windows=stats.n_windows, capped_articles=stats.capped, token_capacity=stats.capacity)
        if layers:
            record["layers_in_pass"] = len(layers)
        by_layer = split_layers(emb, layers) if layers else {None: emb}
        for v, path, expected in outputs:
            save_embeddings(path, embeddings=by_layer[v.layer], split=split, token_counts=counts,
                            fingerprint=expected, stats=record)
        if checkpoint is not None:
            checkpoint.remove()
        cut = (f"{stats.n_windows} windows of {variant.max_tokens} tokens, {stats.capped} articles cut after "
               f"{chunks['max_windows']}" if chunks else
               f"{(counts > variant.max_tokens).mean():.0%} truncated at {variant.max_tokens}")
        print(f"[{label}] {split.name}: {len(texts)} articles in {stats.encode_s:.1f}s "
              f"({stats.articles_per_s:.1f} articles/s, {stats.tokens_per_s:.0f} tokens/s; tokenizing "
              f"{stats.tokenize_s:.2f}s, {stats.tokenize_s / max(stats.tokenize_s + stats.encode_s, 1e-9):.1%} of the "
              f"time; {cut}" + (f"; {stats.oom_retries} OOM retries" if stats.oom_retries else "")
              + ") -> " + ", ".join(str(p) for _, p, _ in outputs))
    del encoder


def embedding_recipe(cfg, variant) -> dict:
    """How a serving stage must embed an article for this probe: one model's recipe (with its windows when
    chunked), or the recipes of a concatenation's parts, whose embeddings go side by side in that order."""
    if variant.parts:
        return {"concatenation": [embedding_recipe(cfg, p) for p in variant.parts],
                "dimensions": cfg.describe(variant)["dimensions"], "text": TEXT_RECIPE}
    spec = cfg.model(variant.model)
    recipe = {"model_name": spec.model_name, "source": spec.source, "prefix": spec.prefix, "pooling": spec.pooling,
              "normalize": spec.normalize, "max_tokens": variant.max_tokens, "dimensions": spec.dimensions,
              "text": TEXT_RECIPE}
    if variant.layer is not None:   # pool hidden_states[layer] (0: the embedding layer) instead of the model's output
        recipe["layer"] = variant.layer
    if variant.chunked:
        recipe["chunks"] = {"window_tokens": variant.max_tokens, **cfg.chunking.model_dump(),
                            "aggregate": "mean of the windows' embeddings" + (", L2-normalised" if spec.normalize else "")}
    return recipe
