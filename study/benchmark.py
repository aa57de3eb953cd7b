"""Phase 4 logic: embedding and probe speed, load time, peak memory, achieved TFLOP/s.

How each figure is measured is stated once, in `METHOD` below; it is stored with every
benchmark JSON (`settings.method`) and quoted by benchmark_speed.py --help.
Per model: `prepare_encoder` (the real model, or a random-weight twin), `time_embedding` in the benchmark setting,
optionally `check_quality` (half precision against fp32), then `time_reference` (fp32,
batch 32). Per probe: `time_probes` on the cached real embeddings.
"""
from __future__ import annotations

import dataclasses
import gc
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from study import paths
from study.backends import parse_backend, with_backend
from study.cache import load_checked
from study.config import TASK_PROBES, Config, Variant
from study.data import Dataset, Split
from study.embedders import (Encoder, batching_for, check_positions, describe_batching, embed_texts, enable_packing,
                             load_model, random_weight_encoder, tokenize, window_ids)
from study.errors import StudyError
from study.estimate import architecture_dir, forward_flops   # noqa: F401 (the FLOP count and shapes: one place)
from study.metrics import summed_rate
from study.provenance import model_revision, record, versions
from study.schemas import BenchmarkRecord, write_record
from study.probes import make_probe

FLOP_FORMULA = ("forward FLOPs of an article of T real tokens = 2 * N * T + 4 * L * T^2 * H, with N the "
                "parameters outside the embedding tables and the pooler (2 FLOPs per weight per token: the "
                "matrix products), L layers and hidden size H (attention scores Q.K^T and their product "
                "with V: 2 * T^2 * H each per layer); padding is not counted, so padded work lowers the figure")

# Dense (no sparsity) peaks in TFLOP/s from NVIDIA's data sheets, matched against the CUDA device
# name in this order. "half": bf16 tensor cores (fp16 on chips without bf16: T4, V100), fp32
# accumulate; "float32": plain fp32 (torch does not use TF32 for matmuls unless told to).
PEAKS = (
    (r"H200", "H200", 989.0, 67.0),            # also GH200 (Hopper, same tensor cores)
    (r"H100.*PCIe", "H100 PCIe", 756.0, 51.0),
    (r"H100.*NVL", "H100 NVL", 835.0, 60.0),
    (r"H100", "H100 SXM", 989.0, 67.0),
    (r"A100", "A100", 312.0, 19.5),
    (r"L40S", "L40S", 362.0, 91.6),
    (r"L40\b", "L40", 181.0, 90.5),
    (r"\bL4\b", "L4", 121.0, 30.3),
    (r"\bA10\b", "A10", 125.0, 31.2),
    (r"RTX 4090", "RTX 4090", 165.0, 82.6),
    (r"\bT4\b", "T4", 65.0, 8.1),
    (r"V100", "V100", 125.0, 15.7),
)
REFERENCE = {"dtype": "float32", "batch_size": 32, "token_budget": None}
SINGLE_CALLS = 200      # single-article predict calls timed per probe (median)
BATCH_ROWS, BATCH_CALLS = 1000, 5
METHOD = {  # the benchmark's methodology, in one place
    "load_time": "cold = first load of the model in this process (libraries imported and CUDA initialised "
                 "before, so neither counts; files may be in the OS page cache), warm = a second load right after",
    "timing": "one warm-up run, then the median wall time of the timed runs of embed_texts on the same articles: "
              "real tokenization + batching + forward passes + copy of the embeddings to the host; CUDA "
              "synchronised before and after each timed run; tokens are the real (unpadded) tokens after truncation",
    "flops": FLOP_FORMULA,
    "share_of_peak": "achieved TFLOP/s over the device's dense peak for the dtype (PEAKS by device name, or "
                     "--peak-tflops)",
    "memory": "gpu: torch.cuda.max_memory_allocated since the warm-up run; rss: peak resident set size of the "
              "whole process since it started (a high-water mark: includes earlier models)",
    "reference": "fp32, batch 32, the same length-sorted batches, no token budget, padded, in the same run",
    "tokenization": "tokenize_seconds = the median tokenization time inside the timed runs, tokenize_share = it over "
                    "the median run time; tokenize_seconds_two_pass = the former tokenization (a truncating pass, "
                    "then the texts at max tokens again whole for their count), median of as many runs, same texts",
    "sentence_transformers": "--st-compare: SentenceTransformer.encode (its default batch 32, max_seq_length = max "
                             "tokens) on the same model object and texts, one warm-up and the median of the same "
                             "number of timed runs, right after the loop's; cosine of its embeddings to the loop's",
    "probe_timing": f"fit on cached train embeddings with val for selection; predict latency = median of "
                    f"{SINGLE_CALLS} single-article calls; per 1000 = median of {BATCH_CALLS} calls on "
                    f"{BATCH_ROWS} test rows (cycled when the test split is smaller)",
    "end_to_end": "1000 / articles_per_s + probe predict_ms_per_1000 / 1000",
    "quality_check": "half precision against fp32 on every train/val/test article: cosine of the embeddings "
                     "and the change in ridge test MAE (target: cosine >= 0.999, |delta MAE| < 0.005)",
}
HALF_DTYPES = ("bfloat16", "float16")
QUALITY_TARGET = {"cosine_min": 0.999, "abs_delta_mae": 0.005}
# another runtime against torch fp32 (issue 31): fp32 runtimes keep the embeddings, int8 weights cost a little
BACKEND_TARGET = {"fp32": {"cosine_min": 0.9999, "abs_delta_mae": 0.01}, "int8": {"cosine_min": 0.99, "abs_delta_mae": 0.01}}


@dataclass(frozen=True)
class Options:
    """Everything the command line decides; stored in the JSON's `settings`."""
    n: int = 1000
    runs: int = 3
    dtype: str | None = None            # None: bf16 on CUDA (fp16 without bf16), fp32 on CPU
    batch_size: int | None = None       # None: the model's batch_size from config
    token_budget: int | None = None     # None: the model's token_budget; 0: none
    probes: tuple[str, ...] = TASK_PROBES["regression"]    # probes to time on the cached embeddings
    random_weights: bool = False
    shapes_dir: str | None = None
    peak_tflops: float | None = None
    reference: bool = True
    quality_check: bool = False
    threads: int | None = None          # torch CPU threads (recorded; the script sets them)
    packed: bool = False                # padding-free batches (BERT / XLM-R encoders; varlen attention on CUDA)
    st_compare: bool = False            # also time plain SentenceTransformer.encode on the same texts
    backend: str = "torch"              # the encoder's runtime on the CPU (study/backends.py): torch, onnx, onnx-int8, openvino


# -- device, versions, peaks ----------------------------------------------------------------
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def peak_tflops(name: str, dtype: str, device_type: str = "cuda") -> tuple[float | None, str | None]:
    """(dense peak TFLOP/s for `dtype` on the device called `name`, matched table row) or (None, None)."""
    if device_type != "cuda":
        return None, None
    for pattern, label, half, fp32 in PEAKS:
        if re.search(pattern, name):
            return (fp32 if dtype == "float32" else half), label
    return None, None


# -- FLOPs ----------------------------------------------------------------------------------
def hf_model(encoder: Encoder) -> torch.nn.Module:
    """The transformers model inside an encoder (a SentenceTransformer wraps one)."""
    from transformers import PreTrainedModel

    for module in encoder.model.modules():
        if isinstance(module, PreTrainedModel):
            return module
    raise StudyError(f"no transformers model found inside {type(encoder.model).__name__}")


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside nn.Embedding tables and the pooler (which sees one token an article)."""
    skip = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) or name.split(".")[-1] == "pooler":
            skip.update(id(p) for p in module.parameters())
    return int(sum(p.numel() for p in model.parameters() if id(p) not in skip))


def model_shape(encoder: Encoder) -> dict:
    model = hf_model(encoder)
    cfg = model.config
    return {"n_params_non_embedding": non_embedding_params(model),
            "n_params_total": int(sum(p.numel() for p in model.parameters())),
            "layers": int(cfg.num_hidden_layers), "hidden": int(cfg.hidden_size),
            "model_type": getattr(cfg, "model_type", None)}


# -- inputs -----------------------------------------------------------------------------------
def benchmark_articles(splits: dict[str, Split], n: int) -> tuple[list[str], str]:
    """The first `n` test articles, topped up from train then val when test has fewer."""
    texts, parts = [], []
    for name in ("test", "train", "val"):
        if name not in splits or len(texts) >= n:
            continue
        take = splits[name].texts[:n - len(texts)]
        texts += take
        parts.append(f"{name}[:{len(take)}]")
    return texts, " + ".join(parts)


# -- timing helpers ---------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> tuple[float | None, str]:
    """(MiB, "gpu") from the CUDA allocator since the last reset, or (MiB, "rss") for the process."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20, "gpu"
    try:
        import resource
    except ImportError:  # not on Unix
        return None, "rss"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "rss"  # bytes on macOS, KiB on Linux


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _to_float32(encoder: Encoder) -> Encoder:
    if encoder.dtype == torch.float32:
        return encoder
    return dataclasses.replace(encoder, model=encoder.model.to(torch.float32), dtype=torch.float32)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def time_embedding(encoder: Encoder, texts: list[str], *, max_tokens: int, batch_size: int,
                   token_budget: int | None, runs: int, shape: dict, peak: float | None,
                   chunks: dict | None = None, prefix: str = "", two_pass: bool = True) -> dict:
    """One warm-up run, then `runs` timed runs of embed_texts (tokenization included); with `chunks`, of the
    chunk-and-average path (texts without their prefix, which goes into every window)."""
    device = encoder.device
    if chunks:   # exact real lengths, untimed
        win = window_ids(encoder.tokenizer, texts, window=max_tokens, prefix=prefix, **chunks)
        ids, counts, cut = win.ids, win.counts, win.capped
    else:
        ids, counts = tokenize(encoder.tokenizer, texts, max_tokens)
        cut = counts > max_tokens
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    kwargs = dict(max_tokens=max_tokens, batch_size=batch_size, token_budget=token_budget, chunks=chunks, prefix=prefix)
    _reset_peak(device)
    embed_texts(encoder, texts, **kwargs)   # warm-up: kernels, allocator, caches
    seconds, stats = [], []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        _, _, st = embed_texts(encoder, texts, **kwargs)
        _sync(device)
        seconds.append(time.perf_counter() - t0)
        stats.append(st)
    memory, kind = peak_memory_mb(device)
    median = statistics.median(seconds)
    tokenize_s = statistics.median(s.tokenize_s for s in stats)
    n_tokens = int(lengths.sum())
    tflops = forward_flops(lengths, shape["n_params_non_embedding"], shape["layers"], shape["hidden"]) / median / 1e12
    last = stats[-1]
    return {
        "dtype": _dtype_name(encoder.dtype), "batch_size": int(batch_size), "token_budget": token_budget or None,
        "max_tokens": int(max_tokens), "n_articles": len(texts), "n_tokens": n_tokens,
        "mean_tokens": n_tokens / len(texts), "truncated_fraction": float(cut.mean()),
        **({"windows": len(ids), "chunks": dict(chunks)} if chunks else {}),
        "articles_per_s": len(texts) / median, "tokens_per_s": n_tokens / median, "run_seconds": seconds,
        "tflops": tflops, "peak_tflops": peak,
        "share_of_peak": tflops / peak if peak else None,
        "peak_memory_mb": memory, "memory_kind": kind,
        "tokenize_seconds": tokenize_s, "tokenize_share": tokenize_s / median,
        **({"tokenize_seconds_two_pass": statistics.median(two_pass_tokenize_seconds(encoder.tokenizer, texts,
                                                                                    max_tokens) for _ in range(runs))}
           if two_pass and not chunks else {}),
        "packed": encoder.packed,
        "n_batches": last.n_batches, "padded_tokens": last.n_padded_tokens,
        "padding_overhead": last.n_padded_tokens / max(last.n_tokens, 1) - 1.0,
        "oom_retries": last.oom_retries,
    }


def two_pass_tokenize_seconds(tokenizer, texts: list[str], max_tokens: int) -> float:
    """Seconds the former tokenization took: a truncating pass, then the texts that reach max tokens again,
    whole, for their count (what `tokenize` did before it tokenized each text once)."""
    t0 = time.perf_counter()
    ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_tokens, verbose=False)["input_ids"]
    at_limit = [t for t, x in zip(texts, ids) if len(x) >= max_tokens]
    if at_limit:
        tokenizer(at_limit, add_special_tokens=True, truncation=False, verbose=False)
    return time.perf_counter() - t0


def time_sentence_transformers(encoder: Encoder, texts: list[str], loop_emb: np.ndarray, *, max_tokens: int,
                               runs: int) -> dict:
    """Plain SentenceTransformer.encode on the same model and texts (see METHOD["sentence_transformers"])."""
    model = encoder.model
    old, model.max_seq_length = model.max_seq_length, max_tokens
    try:
        model.encode(texts, convert_to_numpy=True, show_progress_bar=False)   # warm-up
        seconds = []
        for _ in range(runs):
            _sync(encoder.device)
            t0 = time.perf_counter()
            emb = model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
            _sync(encoder.device)
            seconds.append(time.perf_counter() - t0)
    finally:
        model.max_seq_length = old
    a, b = np.asarray(emb, dtype=np.float64), loop_emb.astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"batch_size": 32, "articles_per_s": len(texts) / statistics.median(seconds), "run_seconds": seconds,
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}


# -- quality guard --------------------------------------------------------------------------------
def quality_check(cfg: Config, encoders: dict[str, Encoder], splits: dict[str, Split], *, prefix: str,
                  max_tokens: int, batch_size: int, token_budget: int | None, target: dict = QUALITY_TARGET) -> dict:
    """Half precision (or another runtime: its backend name) vs torch fp32 on every article of the three splits:
    cosines and ridge test MAE."""
    half = next(d for d in encoders if d != "float32")
    emb = {}
    for dtype, enc in encoders.items():
        emb[dtype] = {name: embed_texts(enc, [prefix + t for t in split.texts], max_tokens=max_tokens,
                                        batch_size=batch_size, token_budget=token_budget)[0]
                      for name, split in splits.items()}
    a = np.concatenate([emb["float32"][s] for s in splits]).astype(np.float64)
    b = np.concatenate([emb[half][s] for s in splits]).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    mae = {}
    for dtype in encoders:
        probe = make_probe("ridge", cfg.probe_methods.ridge, score_range=cfg.score_range, seed=cfg.random_seed)
        probe.fit(emb[dtype]["train"], splits["train"].labels, emb[dtype]["val"], splits["val"].labels)
        mae[dtype] = float(np.mean(np.abs(probe.predict(emb[dtype]["test"]) - splits["test"].labels)))
    delta = mae[half] - mae["float32"]
    return {"half_dtype": half, "n_articles": int(len(cos)), "cosine_min": float(cos.min()),
            "cosine_mean": float(cos.mean()), "ridge_test_mae_float32": mae["float32"],
            "ridge_test_mae_half": mae[half], "delta_mae": delta, "target": dict(target),
            "meets_target": bool(cos.min() >= target["cosine_min"] and abs(delta) <= target["abs_delta_mae"])}


# -- probes ---------------------------------------------------------------------------------------
def time_probes(cfg: Config, dataset: Dataset, variant: Variant, probes=TASK_PROBES["regression"]) -> dict:
    """Training time and prediction latency of each probe on the cached embeddings of `variant`."""
    train, val, test = (load_checked(cfg, dataset, variant, s) for s in ("train", "val", "test"))
    X = np.ascontiguousarray(test["embeddings"])
    batch = np.ascontiguousarray(X[np.arange(BATCH_ROWS) % len(X)])
    out = {}
    for kind in probes:
        probe = make_probe(kind, getattr(cfg.probe_methods, kind), score_range=cfg.score_range,   # the probe as
                           seed=cfg.random_seed, device="cpu", task=dataset.task,       # phase 2 saves it:
                           n_seeds=cfg.seeds_for(dataset.path))                         # its seed ensemble
        t0 = time.perf_counter()
        probe.fit(train["embeddings"], train["labels"], val["embeddings"], val["labels"])
        train_s = time.perf_counter() - t0
        for i in range(3):
            probe.predict(X[i % len(X)][None])
        single = []
        for i in range(SINGLE_CALLS):
            row = X[i % len(X)][None]
            t0 = time.perf_counter()
            probe.predict(row)
            single.append(time.perf_counter() - t0)
        probe.predict(batch)
        batched = []
        for _ in range(BATCH_CALLS):
            t0 = time.perf_counter()
            probe.predict(batch)
            batched.append(time.perf_counter() - t0)
        out[kind] = {"train_seconds": train_s, "predict_ms_per_article": 1000 * statistics.median(single),
                     "predict_ms_per_1000": 1000 * statistics.median(batched) * 1000 / BATCH_ROWS,
                     "n_train": int(len(train["labels"])), "embedding_dim": int(X.shape[1])}
    return out


def end_to_end(models: dict, probes: dict, fine_tuned_ms: tuple[float, float]) -> dict:
    """Embedding cost per article (batched throughput) + probe cost per article in batches of 1000."""
    lo, hi = fine_tuned_ms
    out = {}
    for variant, timings in probes.items():
        if variant not in models:
            continue
        embed_ms = 1000.0 / models[variant]["articles_per_s"]
        out[variant] = {}
        for kind, t in timings.items():
            ms = embed_ms + t["predict_ms_per_1000"] / 1000.0
            out[variant][kind] = {"ms_per_article": ms, "embedding_ms_per_article": embed_ms,
                                  "probe_ms_per_article": t["predict_ms_per_1000"] / 1000.0,
                                  "speedup_vs_fine_tuned": [lo / ms, hi / ms]}
    return out


# -- one model ------------------------------------------------------------------------------------
def prepare_encoder(cfg: Config, variant: Variant, splits: dict[str, Split], device: torch.device, dtype: str,
               opts: Options, say=print) -> tuple[Encoder, dict]:
    """The real model (loaded twice: cold and warm) or its random-weight twin; (encoder, entry fields)."""
    spec = cfg.model(variant.model)
    if opts.random_weights:
        arch = architecture_dir(cfg, variant.model, opts.shapes_dir)
        from transformers import AutoConfig

        check_positions(AutoConfig.from_pretrained(str(arch)), variant.max_tokens, variant.model,
                        str(arch / "config.json"))
        say(f"[{variant.name}] building a random-weight twin from {arch / 'config.json'} "
            f"(BPE tokenizer trained on {len(splits['train'])} train articles)")
        t0 = time.perf_counter()
        encoder = random_weight_encoder(arch, splits["train"].texts, device, dtype, seed=cfg.random_seed)
        _sync(device)
        return encoder, {"random_weights": True, "load_seconds_cold": None, "load_seconds_warm": None,
                         "load_time_meaningful": False, "build_seconds": time.perf_counter() - t0,
                         "architecture": str(arch / "config.json")}
    location = cfg.model_location(variant.model)
    loads = []
    for _ in range(2):
        encoder = None
        _free(device)
        t0 = time.perf_counter()
        encoder = load_model(spec, location, device, dtype, variant.model, variant.max_tokens)
        _sync(device)
        loads.append(time.perf_counter() - t0)
    say(f"[{variant.name}] loaded {location}: cold {loads[0]:.2f}s (first load in this process), warm {loads[1]:.2f}s")
    return encoder, {"random_weights": False, "load_seconds_cold": loads[0], "load_seconds_warm": loads[1],
                     "load_time_meaningful": True, "location": location}


def check_quality(cfg: Config, variant: Variant, encoder: Encoder, splits: dict[str, Split], device: torch.device,
                  setting: dict, say=print) -> tuple[dict, Encoder | None]:
    """Half precision against fp32 (a second copy of the model in the other dtype), or another runtime against
    torch fp32; (result, the torch fp32 encoder)."""
    spec = cfg.model(variant.model)
    if encoder.backend != "torch":
        say(f"[{variant.name}] quality check: {encoder.backend} vs torch float32 on the "
            f"{sum(map(len, splits.values()))} articles of train/val/test")
        torch32 = dataclasses.replace(encoder, runtime=None, backend="torch")   # the same weights, in torch
        target = BACKEND_TARGET["int8" if encoder.backend.endswith("int8") else "fp32"]
        q = quality_check(cfg, {"float32": torch32, encoder.backend: encoder}, splits, prefix=spec.prefix,
                          max_tokens=variant.max_tokens, target=target, **setting)
        say(f"[{variant.name}] quality: cosine min {q['cosine_min']:.5f} mean {q['cosine_mean']:.5f}; ridge test MAE "
            f"{q['ridge_test_mae_float32']:.4f} (torch) vs {q['ridge_test_mae_half']:.4f} ({encoder.backend}), delta "
            f"{q['delta_mae']:+.4f}: " + ("meets" if q["meets_target"] else "MISSES")
            + f" the target (cosine >= {target['cosine_min']}, |delta| <= {target['abs_delta_mae']})")
        return q, torch32
    dtype = _dtype_name(encoder.dtype)
    half = dtype if dtype in HALF_DTYPES else ("bfloat16" if device.type != "cuda" or
                                               torch.cuda.is_bf16_supported() else "float16")
    other_dtype = "float32" if dtype in HALF_DTYPES else half
    say(f"[{variant.name}] quality check: {half} vs float32 on the {sum(map(len, splits.values()))} articles "
        f"of train/val/test")
    other = load_model(spec, cfg.model_location(variant.model), device, other_dtype, variant.model, variant.max_tokens)
    pair = {"float32": other if other_dtype == "float32" else encoder, half: other if other_dtype == half else encoder}
    q = quality_check(cfg, pair, splits, prefix=spec.prefix, max_tokens=variant.max_tokens, **setting)
    say(f"[{variant.name}] quality: cosine min {q['cosine_min']:.5f} mean {q['cosine_mean']:.5f}; ridge test MAE "
        f"{q['ridge_test_mae_float32']:.4f} (fp32) vs {q['ridge_test_mae_half']:.4f} ({half}), "
        f"delta {q['delta_mae']:+.4f}: " + ("meets" if q["meets_target"] else "MISSES")
        + f" the target (cosine >= {QUALITY_TARGET['cosine_min']}, |delta| < {QUALITY_TARGET['abs_delta_mae']})")
    return q, pair["float32"]


def time_reference(variant: Variant, fp32: Encoder, texts: list[str], shape: dict, device_name_: str, runs: int,
                   say=print) -> dict:
    """The reference setting (fp32, batch 32, no token budget) on the same articles."""
    say(f"[{variant.name}] reference setting: float32, batch {REFERENCE['batch_size']}, no token budget")
    ref = time_embedding(fp32, texts, max_tokens=variant.max_tokens, runs=runs, shape=shape,
                         peak=peak_tflops(device_name_, "float32", fp32.device.type)[0],
                         batch_size=REFERENCE["batch_size"], token_budget=REFERENCE["token_budget"] or 0,
                         two_pass=False)
    return {k: ref[k] for k in ("dtype", "batch_size", "token_budget", "articles_per_s", "tokens_per_s", "tflops",
                                "peak_tflops", "share_of_peak", "run_seconds", "peak_memory_mb", "n_batches",
                                "padding_overhead")}


def compare_sentence_transformers(encoder: Encoder, texts: list[str], variant: Variant, opts: Options, setting: dict,
                                  loop_rate: float, say=print) -> dict:
    """The `sentence_transformers_encode` entry (None where the model is not a sentence-transformers one) and
    the loop's speed-up over it."""
    if encoder.source != "sentence-transformers" or variant.chunked:
        say(f"[{variant.name}] --st-compare skipped: not a truncated sentence-transformers model")
        return {"sentence_transformers_encode": None, "speedup_vs_sentence_transformers": None}
    loop_emb = embed_texts(encoder, texts, max_tokens=variant.max_tokens, **setting)[0]
    st = time_sentence_transformers(encoder, texts, loop_emb, max_tokens=variant.max_tokens, runs=opts.runs)
    speedup = loop_rate / st["articles_per_s"]
    say(f"[{variant.name}] SentenceTransformer.encode (batch 32): {st['articles_per_s']:.1f} articles/s; this loop "
        f"x{speedup:.2f}, cosine min {st['cosine_min']:.7f}")
    return {"sentence_transformers_encode": st, "speedup_vs_sentence_transformers": speedup}


def benchmark_model(cfg: Config, variant: Variant, splits: dict[str, Split], texts: list[str], device: torch.device,
                    dtype: str, opts: Options, name: str, say=print) -> dict:
    """Load, time, quality-check and reference-time one model on the device called `name`: its `models` entry."""
    spec = cfg.model(variant.model)
    rows, budget = batching_for(device, opts.batch_size or spec.batch_size or cfg.batch_size, spec.token_budget,
                                variant.max_tokens)
    setting = {"batch_size": opts.batch_size or rows,
               "token_budget": budget if opts.token_budget is None else opts.token_budget}   # 0: none
    chunking = {"chunks": cfg.chunking.model_dump(), "prefix": spec.prefix} if variant.chunked else {}
    texts = texts if variant.chunked else [spec.prefix + t for t in texts]
    encoder, entry = prepare_encoder(cfg, variant, splits, device, dtype, opts, say)
    if opts.packed:
        encoder = enable_packing(encoder)
    if opts.backend != "torch":
        if opts.random_weights or variant.chunked:
            raise StudyError(f"--backend {opts.backend}: times a real model's truncating path (drop --random-weights "
                             "and chunked variants)")
        location = cfg.model_location(variant.model)
        encoder = with_backend(encoder, *parse_backend(opts.backend), paths.runtime_models(cfg), location,
                               model_revision(location), say=say)
    entry["backend"] = encoder.backend
    shape = model_shape(encoder)
    entry.update(shape)
    say(f"[{variant.name}] {len(texts)} articles, {dtype}, max tokens {variant.max_tokens}, "
        f"{describe_batching(setting['batch_size'], setting['token_budget'], encoder.packed)}: "
        f"1 warm-up + {opts.runs} timed runs")
    entry.update(time_embedding(encoder, texts, max_tokens=variant.max_tokens, runs=opts.runs, shape=shape,
                                peak=opts.peak_tflops or peak_tflops(name, dtype, device.type)[0], **setting,
                                **chunking))
    say(f"[{variant.name}] {entry['articles_per_s']:.1f} articles/s, {entry['tokens_per_s']:.0f} tokens/s, "
        f"{entry['tflops']:.3f} TFLOP/s; tokenization {100 * entry['tokenize_share']:.1f}% of the wall time")
    if opts.st_compare:
        entry.update(compare_sentence_transformers(encoder, texts, variant, opts, setting, entry["articles_per_s"], say))
    fp32 = encoder if encoder.dtype == torch.float32 and encoder.runtime is None else None
    if opts.quality_check:
        entry["quality_check"], fp32 = check_quality(cfg, variant, encoder, splits, device, setting, say)
        _free(device)
    entry["reference"], entry["speedup_vs_reference"] = None, None
    if opts.reference and not variant.chunked:   # the reference is about the truncating path's settings
        fp32 = dataclasses.replace(fp32 or _to_float32(encoder), packed=False, runtime=None, backend="torch")   # cast
        # in place; padded; in torch
        encoder = None
        _free(device)
        entry["reference"] = time_reference(variant, fp32, texts, shape, name, opts.runs, say)
        entry["speedup_vs_reference"] = entry["articles_per_s"] / entry["reference"]["articles_per_s"]
        say(f"[{variant.name}] reference {entry['reference']['articles_per_s']:.1f} articles/s: "
            f"x{entry['speedup_vs_reference']:.2f} for the benchmark setting")
    del encoder, fp32
    _free(device)
    return entry


# -- the whole run --------------------------------------------------------------------------------
def benchmark(cfg: Config, dataset: Dataset, variants: list[Variant], splits: dict[str, Split], device: torch.device,
              dtype: str, opts: Options, out: Path, say=print) -> BenchmarkRecord:
    """Phase 4's work: benchmark every model and probe (`run_benchmark`) and write the record to `out`, validated
    against its model first (a figure the model does not know, or one missing, fails before anything is written);
    returns the typed record."""
    return write_record(out, BenchmarkRecord, run_benchmark(cfg, dataset, variants, splits, device, dtype, opts, say))


def run_benchmark(cfg: Config, dataset: Dataset, variants: list[Variant], splits: dict[str, Split],
                  device: torch.device, dtype: str, opts: Options, say=print) -> dict:
    """Benchmark every model and probe; returns the JSON document (see benchmark_speed.py)."""
    if opts.quality_check and opts.random_weights:
        raise StudyError("--quality-check needs real weights: drop --random-weights")
    if opts.n < 1 or opts.runs < 1:
        raise StudyError(f"--n and --runs must be at least 1, found {opts.n} and {opts.runs}")
    _prepare_process(device)
    name = device_name(device)
    texts, source = benchmark_articles(splits, opts.n)
    peak_half, row = peak_tflops(name, "bfloat16", device.type)
    doc = {
        "dataset": dataset.name, "device": str(device), "device_name": name, "versions": versions(),
        "provenance": record(name),
        "settings": {
            **dataclasses.asdict(opts), "dtype_used": dtype, "dataset_path": str(dataset.path),
            "articles": source, "n_articles": len(texts), "warmup_runs": 1,
            "config": str(cfg.root / "config.yaml"), "random_seed": cfg.random_seed,
            "models": {v.name: {**cfg.describe(v), "max_tokens": v.max_tokens} for v in variants},
            "probe_methods": cfg.probe_methods.model_dump(), "probe_device": "cpu",
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "reference_setting": dict(REFERENCE),
            "peak_table_row": row, "peak_tflops_half": peak_half,
            "peak_tflops_float32": peak_tflops(name, "float32", device.type)[0],
            "method": dict(METHOD),
            "argv": sys.argv,
        },
        "fine_tuned_ms_per_article": list(cfg.fine_tuned_ms_per_article),
        "models": {}, "probes": {}, "probes_skipped": {}, "end_to_end": {},
    }
    say(f"device {device} ({name}), {torch.get_num_threads()} CPU threads; {len(texts)} articles ({source})")
    for variant in variants:
        doc["models"][variant.name] = (composed(variant, doc["models"], say) if variant.parts else
                                       benchmark_model(cfg, variant, splits, texts, device, dtype, opts, name, say))
        try:
            doc["probes"][variant.name] = time_probes(cfg, dataset, variant, opts.probes)
        except StudyError as exc:
            doc["probes_skipped"][variant.name] = str(exc)
            say(f"[{variant.name}] probe timings skipped: {exc}")
        else:
            say(f"[{variant.name}] probes timed on cached embeddings: {', '.join(doc['probes'][variant.name])}")
    doc["end_to_end"] = end_to_end(doc["models"], doc["probes"], cfg.fine_tuned_ms_per_article)
    return doc


def composed(variant: Variant, measured: dict, say=print) -> dict:
    """A concatenation costs what its parts cost, one after the other: 1 / sum of 1 / articles per second."""
    missing = [p.name for p in variant.parts if p.name not in measured]
    if missing:
        raise StudyError(f"{variant.name}: its parts {', '.join(missing)} must be benchmarked before it")
    rates = [measured[p.name]["articles_per_s"] for p in variant.parts]
    entry = {"composed_of": [p.name for p in variant.parts], "articles_per_s": summed_rate(rates),
             "dtype": "+".join(measured[p.name].get("dtype", "?") for p in variant.parts),
             "batch_size": "+".join(str(measured[p.name].get("batch_size", "?")) for p in variant.parts),
             "peak_memory_mb": max(measured[p.name].get("peak_memory_mb") or 0 for p in variant.parts) or None}
    say(f"[{variant.name}] {entry['articles_per_s']:.1f} articles/s: its parts' costs summed (not timed again)")
    return entry


def _prepare_process(device: torch.device) -> None:
    """Import the model libraries and create the CUDA context now, so no load time counts them."""
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    if device.type == "cuda":
        if device.index is not None:   # set_device refuses a bare "cuda"
            torch.cuda.set_device(device)
        torch.zeros(1, device=device).sum().item()


# -- printing -------------------------------------------------------------------------------------
def _fmt(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def format_table(doc: dict) -> str:
    """The benchmark as plain-text tables (embedding, probes + end to end, quality)."""
    lines = [f"Benchmark of {doc['dataset']} on {doc['device']} ({doc['device_name']}), "
             f"{doc['settings']['n_articles']} articles, median of {doc['settings']['runs']} runs"]
    head = (f"{'model':<30} {'dtype':<9} {'batch':>5} {'budget':>7} {'articles/s':>10} {'tokens/s':>10} "
            f"{'TFLOP/s':>8} {'%peak':>6} {'x ref':>6} {'ref art/s':>9} {'mem MB':>8} {'load s':>11} "
            f"{'tok s':>6} {'pad':>5}")
    lines += ["", head, "-" * len(head)]
    for variant, m in doc["models"].items():
        if m.get("composed_of"):
            lines.append(f"{variant[:30]:<30} {m['articles_per_s']:>35.1f} articles/s: "
                         f"{' + '.join(m['composed_of'])}, summed")
            continue
        ref = m.get("reference") or {}
        load = ("random" if not m.get("load_time_meaningful", True)
                else f"{m['load_seconds_cold']:.1f}/{m['load_seconds_warm']:.1f}")
        lines.append(
            f"{variant[:30]:<30} {m['dtype']:<9} {m['batch_size']:>5} {_fmt(m['token_budget'], 'd'):>7} "
            f"{m['articles_per_s']:>10.1f} {m['tokens_per_s']:>10.0f} {_fmt(m['tflops'], '.3f'):>8} "
            f"{_fmt(m['share_of_peak'] and 100 * m['share_of_peak'], '.1f'):>6} "
            f"{_fmt(m['speedup_vs_reference'], '.2f'):>6} {_fmt(ref.get('articles_per_s'), '.1f'):>9} "
            f"{_fmt(m['peak_memory_mb'], '.0f'):>6}{m['memory_kind'][0]:>2} {load:>11} "
            f"{m['tokenize_seconds']:>6.2f} {100 * m['padding_overhead']:>4.0f}%")
    lines.append("(mem: g = peak GPU allocation, r = peak process RSS; load s = cold/warm; tok s = tokenization "
                 "inside each run; pad = padded tokens beyond the real ones)")
    if doc["probes"]:
        lo, hi = doc["fine_tuned_ms_per_article"]
        head = (f"{'model':<30} {'probe':<9} {'train s':>8} {'ms/article':>10} {'ms/1000':>9} "
                f"{'e2e ms/art':>10} {f'x fine-tuned ({lo:g}-{hi:g} ms)':>26}")
        lines += ["", head, "-" * len(head)]
        for variant, probes in doc["probes"].items():
            for kind, p in probes.items():
                e = doc["end_to_end"].get(variant, {}).get(kind)
                speed = "-" if not e else "{:.3g}-{:.3g}x".format(*e["speedup_vs_fine_tuned"])
                lines.append(f"{variant[:30]:<30} {kind:<9} {p['train_seconds']:>8.2f} "
                             f"{p['predict_ms_per_article']:>10.3f} {p['predict_ms_per_1000']:>9.2f} "
                             f"{_fmt(e and e['ms_per_article'], '.3f'):>10} {speed:>26}")
        lines.append("(ms/article: one single-article predict call; ms/1000: one call on 1000 articles; e2e: embedding "
                     "at the throughput above + probe in batches of 1000"
                     + ("; the fine-tuned model's cost is a GPU figure, set against a CPU run here)"
                        if doc["device"] == "cpu" else ")"))
    for variant, m in doc["models"].items():
        if m.get("tokenize_share") is not None:
            n = m["n_articles"]
            line = (f"[{variant}] tokenization {m['tokenize_seconds']:.3f} s a run, {100 * m['tokenize_share']:.1f}% of "
                    f"the wall time, {1000 * m['tokenize_seconds'] / n:.3f} ms/article")
            if m.get("tokenize_seconds_two_pass") is not None:
                line += (f" (the former two-pass tokenization: {1000 * m['tokenize_seconds_two_pass'] / n:.3f} "
                         "ms/article)")
            lines.append(line)
        st = m.get("sentence_transformers_encode")
        if st:
            lines.append(f"[{variant}] SentenceTransformer.encode (batch {st['batch_size']}): {st['articles_per_s']:.1f} "
                         f"articles/s; this loop x{m['speedup_vs_sentence_transformers']:.2f}, embeddings cosine min "
                         f"{st['cosine_min']:.7f}")
    for variant, why in doc.get("probes_skipped", {}).items():
        lines.append(f"[{variant}] no probe timings: {why}")
    for variant, m in doc["models"].items():
        q = m.get("quality_check")
        if q:
            lines.append(f"[{variant}] {q['half_dtype']} vs float32 on {q['n_articles']} articles: cosine min "
                         f"{q['cosine_min']:.5f}, mean {q['cosine_mean']:.5f}; ridge test MAE delta "
                         f"{q['delta_mae']:+.4f} -> " + ("meets the target" if q["meets_target"] else "misses the target"))
    return "\n".join(lines)
