"""How long a run will take, said before it starts: a cost model of each phase from what the run will do.

`plan_for` reads what the cost depends on (the articles and their lengths, each model's shape from its config.json,
max tokens, the score dimensions, probes, seeds, the caches already valid, the device and its cores) into a
`Plan`; `estimate` turns a plan into seconds per phase script, plain arithmetic a test can redo by hand.

Where the constants come from (`CPU`, `CUDA`; docs/RESULTS.md "Issue 31: time estimate" has the check):
- the encoder's forward pass costs `forward_flops` (2 x non-embedding parameters per token + 4 x layers x hidden
  x tokens^2 for attention) at an effective rate. CPU, this project's 2-core AMD EPYC, fp32: 130 GFLOP/s for
  hidden < 768 (the stand-in all-MiniLM-L6-v2 in the demo's phase 1, 133; multilingual-e5-small at 256 tokens on
  sustainability_real, 132) and 220 for hidden >= 768 (RESULTS "What a CPU-only run costs": mpnet-base 228,
  e5-large 245, MiniLM-L12 204), scaled linearly with the cores (an assumption: not measured beyond 2 cores).
  CUDA, bf16: the H200 rates of RESULTS "On a GPU" (40 TFLOP/s at hidden 384, 160 at 768, 270 at 1024).
- the probes, fitted from two points on the same machine (the demo's training summary: 300 articles, 3 dimensions,
  2 seeds; RESULTS "Issue 31: the probe phase": 2,000 articles, 8 dimensions, 5 seeds, 384 features): LightGBM
  1.2e-6 s per seed x dimension x feature x (training article + 700), the seed-batched MLP 1.4 s + 2.5e-9 s per
  seed x training article x weight, ridge / logistic 0.05 s + 1e-9 s per article x feature^2 x alpha; LightGBM
  scaled with the cores like the forward pass.
- fine-tuning: 3 forward passes' FLOPs per training article and one per validation article per epoch, at half
  the inference rate (RESULTS "The fine-tuned encoder arm": 150-166 s an epoch, 600 articles, e5-small, 128 tokens).
- each phase's own cost (`FIXED_S`: the process, its imports, reading splits and results) from the demo's phase
  times on 2 cores; phase 1 with something to embed 3.5 s more (torch, transformers), a model's load 1 s + its
  weights at 400 MB/s; evaluate.py 0.45 s per fitted probe + 5.6e-7 s per resample x test article x dimension x
  fitted probe (fitted to the demo, 3 probes x 120 articles x 3 dimensions: 6.4 s, and the 1,000 / 300 / 400
  sustainability subset of RESULTS, 3 probes x 400 articles x 8 dimensions: 11.3 s).
Text length: characters of title + content / 4 tokens (3.6-3.9 on the demo's text, 4.1-4.5 on sustainability_real
with the WordPiece and XLM-R tokenizers), plus 2 special tokens, cut at max tokens.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from study.errors import StudyError

if TYPE_CHECKING:
    from study.config import Config

CHARS_PER_TOKEN = 4.0
SHAPES_DIR = Path(__file__).resolve().parent / "model_shapes"   # the study models' architectures


@dataclass(frozen=True)
class Rates:
    """The constants of one kind of device (module docstring: where each comes from)."""
    gflops: tuple[tuple[int, float], ...]   # (hidden size from which it applies, GFLOP/s), ascending
    cores: int = 2                          # the cores the rates were measured on (CPU)
    load_base_s: float = 1.0                # a model's load: this + its weights at load_mb_s
    load_mb_s: float = 400.0
    train_factor: float = 0.5               # fine-tuning runs at this share of the inference rate


CPU = Rates(gflops=((0, 130.0), (768, 220.0)))
CUDA = Rates(gflops=((0, 40_000.0), (768, 160_000.0), (1024, 270_000.0)), cores=1)

LGBM_S, LGBM_N0 = 1.2e-6, 700   # LightGBM: s per seed x dimension x feature x (training article + LGBM_N0), 2 cores
MLP_S, MLP_FIXED_S = 2.5e-9, 1.4   # the seed-batched MLP: s per seed x training article x weight; s per fit
LINEAR_S, LINEAR_FIXED_S = 1e-9, 0.05   # ridge / logistic: s per article x feature^2 x alpha; s per fit
EVAL_FIT_S, BOOT_S = 0.45, 5.6e-7   # evaluate.py: s per fitted probe; s per resample x test article x dimension x fit
PROBE_PREDICT_S = 0.5              # benchmark_speed.py: prediction latency of one probe
PER_VARIANT_S = 0.4                # compare, errors, report: tables and figures of one variant
TORCH_S = 3.5                      # phase 1 with something to embed: importing torch and transformers
# each phase's own cost beside the work above: the process, its imports, reading the splits or the results
# (the demo's phases on 2 cores: compare 1.8-2.2 s, report 2.0 s, errors 1.6-2.6 s, the rest by difference)
FIXED_S = {"embed_articles.py": 2.2, "train_probes.py": 3.7, "finetune_encoder.py": 6.0, "evaluate.py": 4.5,
           "compare_results.py": 1.8, "benchmark_speed.py": 6.0, "analyze_error_distribution.py": 1.8,
           "generate_report.py": 1.8}


@dataclass(frozen=True)
class Shape:
    """What an encoder's forward pass costs: parameters outside the embedding tables, layers, hidden size, and
    all parameters (the bytes to load)."""
    params: int
    layers: int
    hidden: int
    total_params: int


@dataclass(frozen=True)
class Encoding:
    """One forward pass over articles: a model variant (or a group of layer variants, one pass) and the token
    counts it runs per split: only the splits whose cache is not valid yet."""
    name: str
    shape: Shape
    features: int                                 # the embedding's dimensions (what the probes see)
    tokens: dict[str, np.ndarray]                 # split -> tokens per sequence it runs (windows for chunks)
    cached: tuple[str, ...] = ()                  # splits whose cache is valid (cost nothing)


@dataclass(frozen=True)
class Plan:
    """What a run of one dataset will do, as the cost model needs it."""
    n: dict[str, int]                             # articles per split
    dimensions: int
    encodings: list[Encoding]                     # phase 1's forward passes
    variants: list[tuple[str, int]]               # (variant, features) the probes are fitted on (parts and pairs too)
    probes: list[str]
    seeds: int
    alphas: int = 8
    fits_per_probe: float = 1.0                   # 1 + learning-curve shares + the --train-languages share
    bootstrap: int = 1000
    device: str = "cpu"                           # cpu | cuda
    cores: int = 2
    bench: dict | None = None                     # {"tokens": {variant: array}, "runs", "reference"}
    finetune: list[Encoding] = field(default_factory=list)   # tokens of train / val at the model's max tokens
    epochs: int = 4
    mlp_hidden: tuple[int, ...] = (256, 128)      # config probe_methods.mlp.hidden_sizes


def forward_flops(lengths, n_params: int, layers: int, hidden: int) -> float:
    """Total forward FLOPs over articles of `lengths` real tokens: 2 x non-embedding parameters per token (a
    multiply-add per weight) + 4 x layers x hidden x length^2 per article (QK^T and attention x V)."""
    t = np.asarray(lengths, dtype=np.float64)
    return float(np.sum(2.0 * n_params * t + 4.0 * layers * hidden * t * t))


def rate(plan: Plan, hidden: int) -> float:
    """FLOP/s of the forward pass on the plan's device."""
    rates = CUDA if plan.device == "cuda" else CPU
    gflops = [g for h, g in rates.gflops if hidden >= h][-1]
    scale = 1.0 if plan.device == "cuda" else plan.cores / rates.cores
    return gflops * 1e9 * scale


def forward_seconds(plan: Plan, enc: Encoding, splits=None) -> float:
    s = enc.shape
    todo = [t for k, t in enc.tokens.items() if splits is None or k in splits]
    return sum(forward_flops(t, s.params, s.layers, s.hidden) for t in todo) / rate(plan, s.hidden)


def load_seconds(plan: Plan, shape: Shape) -> float:
    rates = CUDA if plan.device == "cuda" else CPU
    return rates.load_base_s + 4.0 * shape.total_params / (rates.load_mb_s * 1e6)


def probe_seconds(plan: Plan, probe: str, features: int) -> float:
    """One fit of `probe` (its seed ensemble) on the plan's training split, on the CPU."""
    n, d, k = plan.n.get("train", 0), features, plan.dimensions
    cpu = CPU.cores / max(plan.cores, 1)   # probes run on the CPU
    if probe == "lightgbm":
        return LGBM_S * plan.seeds * k * d * (n + LGBM_N0) * cpu
    if probe == "mlp":
        sizes = (d, *plan.mlp_hidden, k)
        weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
        return MLP_FIXED_S + MLP_S * plan.seeds * n * weights
    return LINEAR_FIXED_S + LINEAR_S * n * d * d * plan.alphas   # ridge, logistic


def estimate(plan: Plan, phases: list[str]) -> dict[str, float]:
    """Seconds per phase script of `phases` (run_all.py's PHASES values) for one dataset."""
    factor = (CUDA if plan.device == "cuda" else CPU).train_factor
    fits = [(p, f) for _, f in plan.variants for p in plan.probes]
    train_fit = sum(probe_seconds(plan, p, f) for p, f in fits)
    fitted = len(fits) * plan.fits_per_probe
    work = {
        "embed_articles.py": (TORCH_S if any(e.tokens for e in plan.encodings) else 0.0)
        + sum((load_seconds(plan, e.shape) if e.tokens else 0.0) + forward_seconds(plan, e) for e in plan.encodings),
        "train_probes.py": train_fit * plan.fits_per_probe,
        "finetune_encoder.py": sum(load_seconds(plan, e.shape) + forward_seconds(plan, e, ["test"]) / factor
                                   + plan.epochs * (3 * forward_seconds(plan, e, ["train"])
                                                    + forward_seconds(plan, e, ["val"])) / factor
                                   for e in plan.finetune),
        "evaluate.py": fitted * (EVAL_FIT_S + BOOT_S * plan.bootstrap * plan.n.get("test", 0) * plan.dimensions),
        "compare_results.py": PER_VARIANT_S * len(plan.variants),
        "benchmark_speed.py": (_bench(plan) if plan.bench else 0.0) + train_fit + PROBE_PREDICT_S * len(fits),
        "analyze_error_distribution.py": PER_VARIANT_S * len(plan.variants),
        "generate_report.py": PER_VARIANT_S * len(plan.variants),
    }
    return {p: FIXED_S[p] + work[p] for p in phases}


def _bench(plan: Plan) -> float:
    b, total = plan.bench, 0.0
    for e in plan.encodings:
        if e.name in b["tokens"]:
            one = Encoding(e.name, e.shape, e.features, {"bench": b["tokens"][e.name]})
            total += 2 * load_seconds(plan, e.shape) \
                + (1 + b["runs"]) * (2 if b["reference"] else 1) * forward_seconds(plan, one)
    return total


# -- reading what a run will do --------------------------------------------------------------------------------
def architecture_dir(cfg: Config, model: str, shapes_dir: str | Path | None) -> Path:
    """The folder whose config.json describes `model`: `<shapes_dir>/<name>`, else the model's own folder.

    Names tried under shapes_dir: the config name, the last part of the HF id, and that
    without a `paraphrase-` prefix (sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2
    -> multilingual-MiniLM-L12-v2).
    """
    tried = []
    if shapes_dir:
        base = Path(shapes_dir).expanduser().resolve()
        tail = cfg.model(model).model_name.rstrip("/").split("/")[-1]
        for name in dict.fromkeys([model, tail, tail.removeprefix("paraphrase-")]):
            tried.append(base / name / "config.json")
            if tried[-1].is_file():
                return tried[-1].parent
    try:
        location = Path(cfg.model_location(model))
    except StudyError:
        location = None
    if location is not None and location.is_dir():
        for sub in ("", "0_Transformer"):
            tried.append(location / sub / "config.json")
            if tried[-1].is_file():
                return tried[-1].parent
    raise StudyError(f"--random-weights: no architecture config for model '{model}'; tried "
                     + ", ".join(str(t) for t in tried) + " (point --shapes-dir at the model_shapes folder)")


def model_shape(cfg, model: str, shapes_dir: Path | None = None) -> Shape:
    """A model's Shape from its config.json (study/model_shapes, else its local folder); from its declared
    dimensions when neither is there (a BERT-base-like 12-layer encoder of that width)."""
    try:
        c = json.loads((architecture_dir(cfg, model, shapes_dir or SHAPES_DIR) / "config.json").read_text())
    except (StudyError, OSError, ValueError):
        h = cfg.model(model).dimensions
        return Shape(params=12 * 12 * h * h, layers=12, hidden=h, total_params=12 * 12 * h * h + 250_000 * h)
    h, layers = int(c["hidden_size"]), int(c["num_hidden_layers"])
    inner = int(c.get("intermediate_size") or 4 * h)
    heads = int(c.get("num_attention_heads") or 1)
    kv = int(c.get("num_key_value_heads") or heads) * (h // heads)
    mlp = 3 if c.get("hidden_act") == "silu" else 2   # gated MLPs (Qwen, Llama) have three matrices
    params = layers * (2 * h * h + 2 * h * kv + mlp * h * inner)
    table = (int(c.get("vocab_size") or 0) + int(c.get("max_position_embeddings") or 0)) * h
    return Shape(params=params, layers=layers, hidden=h, total_params=params + table)


@dataclass(frozen=True)
class SplitText:
    """What the cost model reads of a split: the estimated tokens of each article (title + content, before the
    prefix and truncation), its labels' length and its articles' languages (None where a line has none)."""
    tokens: np.ndarray
    dimensions: int
    languages: list


def split_text(path: Path) -> SplitText:
    from study.data import article_of, jsonl_records

    chars, dims, langs = [], 0, []
    for n, rec in jsonl_records(path):
        chars.append(len(article_of(path, n, rec)[2]))
        dims = dims or len(rec.get("labels") or [])
        langs.append(rec.get("language"))
    return SplitText(text_tokens(chars), dims, langs)


def text_tokens(chars) -> np.ndarray:
    """Estimated tokens of texts of `chars` characters: CHARS_PER_TOKEN a token, plus 2 special tokens."""
    return np.ceil(np.asarray(chars, dtype=np.float64) / CHARS_PER_TOKEN) + 2


def sequence_tokens(lengths: np.ndarray, max_tokens: int, chunked: bool = False, overlap: int = 0,
                    max_windows: int = 1) -> np.ndarray:
    """The tokens of each sequence the encoder runs: each article cut at max_tokens, or (chunked) its windows of
    max_tokens overlapping by `overlap`, at most max_windows per article, the last one as long as what is left."""
    lengths = np.asarray(lengths, dtype=np.float64)
    if not chunked:
        return np.minimum(lengths, max_tokens)
    step = max(max_tokens - overlap, 1)
    windows = np.clip(np.ceil(np.maximum(lengths - overlap, 1) / step), 1, max_windows).astype(int)
    out = []
    for length, w in zip(lengths, windows):
        last = min(max_tokens, max(length - (w - 1) * step, 1))
        out += [max_tokens] * (w - 1) + [last]
    return np.asarray(out, dtype=np.float64)


def _cached(cfg, dataset: str, variant, split: str, data_path: Path) -> bool:
    """Whether phase 1 will find `variant`'s cache of `split` valid (its recorded dtype taken as the one asked for)."""
    from study import paths
    from study.cache import CACHE_KEYS, fingerprint, mismatch, read_fingerprint, recorded_dtype
    from study.data import file_sha256

    found = read_fingerprint(paths.embedding_cache(cfg, dataset, variant.name, split))
    if found is None:
        return False
    expected = fingerprint(cfg, variant, recorded_dtype(found), split, file_sha256(data_path))
    return mismatch(found, expected, CACHE_KEYS) is None


def resolve_device(device: str) -> str:
    """cpu or cuda for a device setting (auto: CUDA when torch sees one)."""
    if device == "auto":
        import torch   # noqa: PLC0415 (only for auto)

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


SPLITS = ("train", "val", "test")


def plan_for(cfg: Config, name: str, data_dir: str | None, *, models: list[str] | None, max_tokens: list[int] | None,
             probes: list[str] | None, device: str, train_fractions: list[float] | None = None,
             train_languages: list[str] | None = None, finetune: list[str] | None = None,
             bench: dict | None = None, phases: tuple[str, ...] = ()) -> Plan:
    """The Plan of one dataset's run: `models` / `max_tokens` / `probes` as the phases take them (variants already
    expanded for --chunks and --layers), `bench` {"n", "runs", "reference"} when the benchmark runs, `phases` the
    scripts that run (a skipped embedding phase embeds nothing)."""
    from study.config import TASK_PROBES, task_probes, with_parts
    from study.data import resolve_dataset

    dataset = resolve_dataset(cfg, name, data_dir)
    text = {s: split_text(dataset.path / f"{s}.jsonl") for s in SPLITS}
    variants = cfg.select_variants(models, max_tokens)
    embedding = "embed_articles.py" in phases or not phases
    groups: dict = {}
    for v in with_parts(variants):
        if not v.parts:   # a side-by-side pair costs its parts
            groups.setdefault((v.model, v.max_tokens, v.chunked, v.layer is not None), []).append(v)
    encodings = []
    for (model, tokens, chunked, _), group in groups.items():
        spec, shape = cfg.model(model), model_shape(cfg, model)
        cached = tuple(s for s in SPLITS if not embedding
                       or all(_cached(cfg, dataset.name, v, s, dataset.path / f"{s}.jsonl") for v in group))
        seqs = {s: _sequences(cfg, text[s].tokens, spec.prefix, tokens, chunked) for s in SPLITS if s not in cached}
        encodings.append(Encoding(" ".join(v.name for v in group), shape, spec.dimensions, seqs, cached))
    bench_plan = None
    if bench:
        first = np.concatenate([text[s].tokens for s in ("test", "train", "val")])[:bench["n"]]
        bench_plan = {"runs": bench["runs"], "reference": bench["reference"], "tokens": {
            " ".join(v.name for v in group): _sequences(cfg, first, cfg.model(model).prefix, tokens, chunked)
            for (model, tokens, chunked, layered), group in groups.items() if not layered}}
    tuned = []
    for v in cfg.select_variants(finetune, None) if finetune else []:
        spec = cfg.model(v.model)
        tuned.append(Encoding(v.name, model_shape(cfg, v.model), spec.dimensions,
                              {s: _sequences(cfg, text[s].tokens, spec.prefix, v.max_tokens, False) for s in SPLITS}))
    langs = text["train"].languages
    share = (sum(lang in train_languages for lang in langs) / len(langs) if all(langs) else 1.0) \
        if train_languages and langs else 0.0
    extra = sum(f for f in (train_fractions or []) if f < 1)
    return Plan(n={s: len(text[s].tokens) for s in SPLITS}, dimensions=text["train"].dimensions or 1,
                encodings=encodings, variants=[(v.name, cfg.describe(v)["dimensions"]) for v in variants],
                probes=task_probes(dataset.task, [p for p in probes or [] if p in TASK_PROBES[dataset.task]]), seeds=cfg.seeds_for(dataset.path),
                alphas=len(cfg.probe_methods.ridge.alphas), fits_per_probe=1.0 + extra + share,
                bootstrap=cfg.bootstrap_samples, device=resolve_device(device or cfg.device), cores=cores(),
                bench=bench_plan, finetune=tuned, epochs=cfg.finetune.epochs,
                mlp_hidden=tuple(cfg.probe_methods.mlp.hidden_sizes))


def _sequences(cfg: Config, tokens: np.ndarray, prefix: str, max_tokens: int, chunked: bool) -> np.ndarray:
    with_prefix = tokens + (math.ceil(len(prefix) / CHARS_PER_TOKEN) if prefix else 0)
    return sequence_tokens(with_prefix, max_tokens, chunked, cfg.chunking.overlap, cfg.chunking.max_windows)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min" if seconds < 5400 \
        else f"{seconds / 3600:.1f} h"


def describe(plan: Plan) -> str:
    return f"{plan.device}, {plan.cores} core{'s' if plan.cores > 1 else ''}"


def estimate_line(name: str, estimated: dict[str, float], labels: dict[str, str], plan: Plan) -> str:
    """'estimate for <dataset>: <phase> <time>, ...; total <time> (...)', phases keyed by script, named by `labels`."""
    parts = ", ".join(f"{labels.get(s, s)} {duration(t)}" for s, t in estimated.items())
    return (f"estimate for {name}: {parts}; total {duration(sum(estimated.values()))} "
            f"(cost model: study/estimate.py, {describe(plan)})")


def off_lines(name: str, estimated: dict[str, float], measured: dict[str, float], labels: dict[str, str]) -> list[str]:
    """How far each phase's estimate was off: measured, estimated and their ratio, per phase and in total."""
    rows = [(labels.get(s, s), measured[s], estimated[s]) for s in estimated if s in measured]
    if not rows:
        return []
    rows.append(("total", sum(m for _, m, _ in rows), sum(e for _, _, e in rows)))
    return [f"time against the estimate for {name} (measured / estimated):"] + [
        f"  {label:10s} {m:8.1f}s / {e:8.1f}s  x{m / e:.2f}" for label, m, e in rows]
