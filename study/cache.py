"""Embedding caches: one `.npz` per dataset x model variant x split (named by `study.paths`).

A cache holds embeddings (float32), ids, labels, dimension_names, token counts (before
truncation), languages, titles and a JSON fingerprint of what produced it. It is valid
only while the fingerprint matches the current settings and input file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.artifacts import NPZ_ERRORS, current, read_npz, save_npz
from study import paths
from study.config import Config, Variant
from study.errors import StudyError
from study.provenance import model_revision, record

# Keys that describe the model side of an embedding; the rest (split, data hash) describe
# the input. A probe may only score embeddings whose model side matches its training's.
MODEL_KEYS = ("source", "model_name", "max_tokens", "prefix", "pooling", "normalize", "dtype", "revision", "chunks", "backend",
              "parts", "layer")
# Keys a rerun compares to decide whether a cache is still valid.
CACHE_KEYS = MODEL_KEYS + ("split", "data_sha256", "layout")
CACHE_LAYOUT = 2   # 2: strings packed as UTF-8 + offsets (study.artifacts.save_npz)


def fingerprint(cfg: Config, variant: Variant, dtype, split: str, data_sha256: str, backend: str = "torch") -> dict:
    """What produced a cache: the model side (MODEL_KEYS), the input side (split, data hash) and, where it
    can be known here, the model's revision (weights changed: the cache is rebuilt).

    A chunked variant adds its windowing (`chunks`), a layer variant its layer (`layer`); a concatenation records its parts' model sides
    (`parts`; `dtype` then lists one dtype per part)."""
    if variant.parts:
        dtypes = list(dtype) if isinstance(dtype, (list, tuple)) else [dtype] * len(variant.parts)
        return {"parts": [model_side(fingerprint(cfg, p, d, split, data_sha256)) for p, d in zip(variant.parts, dtypes)],
                "max_tokens": variant.max_tokens, "split": split, "data_sha256": data_sha256, "layout": CACHE_LAYOUT}
    m = cfg.model(variant.model)
    fp = {"source": m.source, "model_name": m.model_name, "max_tokens": int(variant.max_tokens), "prefix": m.prefix,
          "pooling": m.pooling, "normalize": m.normalize, "dtype": dtype, "split": split, "data_sha256": data_sha256,
          "layout": CACHE_LAYOUT, "chunks": cfg.chunking.model_dump() if variant.chunked else None}
    if variant.layer is not None:   # the output of that hidden layer (absent: the model's own output)
        fp["layer"] = int(variant.layer)
    if backend != "torch":   # another runtime (study/backends.py; absent: torch)
        fp["backend"] = backend
    try:
        revision = model_revision(cfg.model_location(variant.model))
    except StudyError:   # e.g. results copied home without the model's package
        revision = None
    if revision is not None:
        fp["revision"] = revision
    return fp


def model_side(fp: dict) -> dict:
    return {k: fp[k] for k in MODEL_KEYS if k in fp}


def recorded_dtype(found: dict):
    """The dtype a cache was made with: one, or one per part of a concatenation."""
    return [p.get("dtype") for p in found["parts"]] if isinstance(found.get("parts"), list) else found.get("dtype")


def mismatch(found: dict, expected: dict, keys) -> str | None:
    """'key made with X, expected Y' for the first differing key, or None when they agree."""
    for key in keys:
        if (key in expected or key in ("layer", "backend")) and found.get(key) != expected.get(key):   # absent: the
            # model's output, torch
            a, b = found.get(key), expected.get(key)
            if key == "parts" and isinstance(a, list) and len(a) == len(b):   # say which part, and what in it
                why = next((f"part {i + 1}: {w}" for i, (x, y) in enumerate(zip(a, b)) if (w := mismatch(x, y, keys))),
                           None)
                if why is None:   # parts agree on every key the current settings can know
                    continue
                return why
            return f"{key} made with {a!r}, expected {b!r}"
    return None


def status(path: Path, expected: dict) -> str | None:
    """Why the cache at `path` cannot be used for `expected` (its fingerprint): 'missing', 'unreadable', the
    first differing setting, or damage behind a matching fingerprint (`cache_damage`: non-finite values, wrong
    shape); None when it is valid. The one validity rule of phase 1 and the concatenation (the loaders apply the
    same `mismatch` and `damage` to what they read)."""
    if not Path(path).is_file():
        return "missing"
    found = read_fingerprint(path)
    return "unreadable" if found is None else mismatch(found, expected, CACHE_KEYS) or cache_damage(path)


@dataclass(frozen=True)
class Rows:
    """The article rows a cache stores beside its embeddings, as `save_embeddings` reads them (a data.Split has them
    too): those of the first part's cache, for a side-by-side pair."""
    ids: np.ndarray
    labels: np.ndarray
    dimension_names: list
    languages: np.ndarray
    titles: np.ndarray


def save_embeddings(path: Path, *, embeddings, split, token_counts, fingerprint: dict, stats: dict) -> None:
    """The cache; `stats` (seconds, articles/s, devices, dtype) is what embedding it cost."""
    save_npz(path, embeddings=np.asarray(embeddings, dtype=np.float32), ids=split.ids,
             embed_stats=np.asarray(json.dumps(stats, sort_keys=True)),
             provenance=np.asarray(json.dumps(record(", ".join(stats.get("devices") or [])), sort_keys=True)),
             labels=split.labels.astype(np.float32), dimension_names=np.asarray(split.dimension_names, dtype=str),
             token_counts=np.asarray(token_counts, dtype=np.int64), languages=split.languages,
             titles=split.titles, fingerprint=np.asarray(json.dumps(fingerprint, sort_keys=True)))


def damage(data: dict) -> str | None:
    """What is wrong with a cache's arrays whatever its fingerprint says (None: sound): embeddings that are not a
    finite float matrix, or rows, labels and dimension names that do not agree."""
    try:
        emb, n = data["embeddings"], len(data["ids"])
        if emb.ndim != 2 or emb.dtype.kind != "f" or emb.shape[1] == 0:
            return f"embeddings of shape {emb.shape} and type {emb.dtype}, expected a float matrix"
        for key in ("embeddings", "labels", "token_counts", "languages", "titles"):
            if len(data[key]) != n:
                return f"{len(data[key])} rows of {key} for {n} ids"
        if data["labels"].ndim != 2 or data["labels"].shape[1] != len(data["dimension_names"]):
            return f"labels of shape {data['labels'].shape} for {len(data['dimension_names'])} dimension names"
        if not np.isfinite(emb).all():
            return f"{int((~np.isfinite(emb)).any(axis=1).sum())} of {n} rows of embeddings not finite (NaN or inf)"
    except (KeyError, TypeError, AttributeError) as exc:
        return f"no {exc}"
    return None


def _decoded(path: Path) -> dict:
    data = read_npz(path, "embedding cache", "run embed_articles.py, with --force if it exists")
    try:
        data["fingerprint"] = json.loads(str(data["fingerprint"]))
        data["dimension_names"] = [str(d) for d in data["dimension_names"]]
    except (KeyError, ValueError) as exc:
        raise StudyError(f"{path}: not an embedding cache of this project ({exc}); rerun embed_articles.py --force") from None
    return data


def read_embeddings(path: Path) -> dict:
    """The cache as a dict of arrays, `fingerprint` decoded; StudyError if absent, unreadable or damaged."""
    data = _decoded(path)
    why = damage(data)
    if why:
        raise StudyError(f"{path}: damaged embedding cache ({why}); rerun embed_articles.py (it rebuilds it)")
    return data


def cache_damage(path: Path) -> str | None:
    """Why the cache at `path` cannot be used although its fingerprint may match (phase 1 then rebuilds it)."""
    try:
        return damage(_decoded(path))
    except StudyError:
        return "unreadable"


def read_fingerprint(path: Path, member: str = "fingerprint") -> dict | None:
    """Only the fingerprint (or `embed_stats`) of a cache, no embeddings read; None when it cannot be read."""
    try:
        with np.load(current(path), allow_pickle=False) as z:
            return json.loads(str(z[member]))
    except NPZ_ERRORS:
        return None


def data_hashes(cfg: Config, dataset, variant: Variant) -> dict:
    """{split: data hash} the caches of `variant` recorded (fingerprints only, no embeddings read)."""
    out = {}
    for split in ("train", "val", "test"):
        path = paths.embedding_cache(cfg, dataset.name, variant.name, split)
        fp = read_fingerprint(path)
        if fp is None:
            raise StudyError(f"embedding cache not found or unreadable: {path} (run embed_articles.py)")
        out[split] = fp.get("data_sha256")
    return out


CHECKPOINT_ROWS = 1024   # rows embedded between two saves of a cache's partial work


class Checkpoint:
    """Partial work of one cache: the embeddings of the first rows of its length-sorted plan, saved every
    `every` rows beside the cache (`.<cache name>.partial.npz`) with the cache's fingerprint and a hash of
    the plan. A rerun with the same fingerprint and plan resumes after them; anything else starts afresh.
    A kill loses at most the rows since the last save."""

    def __init__(self, cache_path: Path, fingerprint: dict, every: int | None = None):
        self.path = paths.partial_cache(cache_path)
        self.fingerprint, self.plan, self.saved = json.dumps(fingerprint, sort_keys=True), None, 0
        self.every = every or CHECKPOINT_ROWS

    def bind(self, order, batches) -> None:
        digest = hashlib.sha256(np.asarray(order, dtype=np.int64).tobytes())
        digest.update(np.asarray(batches, dtype=np.int64).tobytes())
        self.plan = digest.hexdigest()

    def resume(self) -> tuple[int, np.ndarray | None]:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == self.fingerprint and str(z["plan"]) == self.plan:
                    self.saved = int(z["rows"])
                    return self.saved, z["embeddings"][:self.saved]
        except NPZ_ERRORS:
            pass
        return 0, None

    def due(self, rows: int) -> bool:
        return rows - self.saved >= self.every

    def save(self, rows: int, embeddings: np.ndarray) -> None:
        save_npz(self.path, embeddings=embeddings, rows=np.int64(rows), fingerprint=np.asarray(self.fingerprint),
                 plan=np.asarray(self.plan))
        self.saved = rows

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def load_checked(cfg: Config, dataset, variant: Variant, split: str) -> dict:
    """Read a cache and make sure it was made from the current input file and settings."""
    from study.data import file_sha256

    path = paths.embedding_cache(cfg, dataset.name, variant.name, split)
    data = read_embeddings(path)
    source_file = dataset.path / f"{split}.jsonl"
    if source_file.is_file():
        data_sha256 = file_sha256(source_file)
    elif dataset.path.is_dir():
        raise StudyError(f"split '{split}' missing: {source_file} does not exist")
    else:   # results copied home without the data: the cache's own record stands (see data_hashes)
        data_sha256 = data["fingerprint"].get("data_sha256")
    expected = fingerprint(cfg, variant, recorded_dtype(data["fingerprint"]), split, data_sha256,
                           data["fingerprint"].get("backend", "torch"))   # the runtime is the cache's own choice
    why = mismatch(data["fingerprint"], expected, CACHE_KEYS)   # status()'s rule, on the fingerprint already read
    if why:
        raise StudyError(f"{path} was made with other settings or data ({why}); "
                         f"rerun embed_articles.py --dataset {dataset.name} --models {variant.name}")
    return data


def concatenate(cfg: Config, dataset, variant: Variant, split, force: bool = False) -> tuple[Path, bool]:
    """The cache of a concatenation `a+b` for one split: its parts' cached embeddings side by side; (its path,
    whether it was made now: False when the valid cache was kept).

    Nothing is embedded: each part's cache must be valid for the current data and settings, and
    all must hold the same articles in the same order with the same labels. The token counts (and
    so what the evaluation calls truncated) are those of the part that reaches furthest into an article
    (the most max tokens, or for a chunked part the tokens its windows cover: `token_capacity` in the
    stats), since the pair loses text only where every part does; the
    recorded cost is the sum of the parts'. A rerun rebuilds only when a part's cache changed.
    """
    from study.data import file_sha256

    path = paths.embedding_cache(cfg, dataset.name, variant.name, split.name)
    part_paths = [paths.embedding_cache(cfg, dataset.name, p.name, split.name) for p in variant.parts]
    for part, part_path in zip(variant.parts, part_paths):
        if not part_path.is_file():
            raise StudyError(f"{variant.name} {split.name}: the cache of its part {part.name} is missing ({part_path}); "
                             f"run embed_articles.py --models {part.name}")
    part_sha = {p.name: file_sha256(pp) for p, pp in zip(variant.parts, part_paths)}
    if path.exists() and not force:
        stats = read_fingerprint(path, "embed_stats") or {}
        dtypes = [(read_fingerprint(pp) or {}).get("dtype") for pp in part_paths]
        why = status(path, fingerprint(cfg, variant, dtypes, split.name, split.sha256))
        why = why or ("a part was rebuilt" if stats.get("part_sha256") != part_sha else
                      None if "token_capacity" in stats else "made before pairs recorded their token capacity")
        if why is None:
            print(f"[{variant.name}] {split.name}: cache is valid, skipped ({path.name})")
            return path, False
        print(f"[{variant.name}] {split.name}: cache out of date ({why}), rebuilding")
    caches = [load_checked(cfg, dataset, p, split.name) for p in variant.parts]
    first = caches[0]
    for part, cache in zip(variant.parts[1:], caches[1:]):
        for key in ("ids", "labels"):
            if not np.array_equal(cache[key], first[key]):
                raise StudyError(f"{variant.name} {split.name}: the caches of {variant.parts[0].name} and {part.name} "
                                 f"differ in {key} (other articles, order or labels); rerun embed_articles.py --force "
                                 f"--models {variant.parts[0].name} {part.name}")
    costs = [read_fingerprint(pp, "embed_stats") or {} for pp in part_paths]
    cuts = [c.get("token_capacity") if p.chunked else p.max_tokens for p, c in zip(variant.parts, costs)]
    if not all(isinstance(c, int) for c in cuts):
        raise StudyError(f"{variant.name} {split.name}: a chunked part's cache has no record of the tokens its windows "
                         "cover; rerun embed_articles.py --force for it")
    reach = max(range(len(caches)), key=lambda i: cuts[i])   # the pair loses text only where every part does
    seconds = [c.get("seconds") for c in costs]
    total = sum(seconds) if all(isinstance(x, (int, float)) for x in seconds) else None
    stats = {"seconds": total, "articles_per_s": len(first["ids"]) / total if total else None, "tokens_per_s": None,
             "devices": sorted({d for c in costs for d in c.get("devices") or []}),
             "dtype": "+".join(str(c.get("dtype")) for c in costs),
             "parts": dict(zip(part_sha, costs)), "part_sha256": part_sha, "token_capacity": cuts[reach]}
    emb = np.hstack([c["embeddings"] for c in caches])
    rows = Rows(*(first[k] for k in ("ids", "labels", "dimension_names", "languages", "titles")))
    save_embeddings(path, embeddings=emb, split=rows, token_counts=caches[reach]["token_counts"], stats=stats,
                    fingerprint=fingerprint(cfg, variant, [c["fingerprint"].get("dtype") for c in caches], split.name,
                                            first["fingerprint"]["data_sha256"]))
    print(f"[{variant.name}] {split.name}: {emb.shape[1]} dimensions ({' + '.join(str(c['embeddings'].shape[1]) for c in caches)}) "
          f"for {len(first['ids'])} articles -> {path}")
    return path, True
