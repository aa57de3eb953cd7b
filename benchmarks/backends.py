"""Stage 1 on the CPU through each encoder runtime (issue 31): speed, cosine to torch fp32, probe MAE change.

    python benchmarks/backends.py --stage1 results/<ds>_stage1_<variant>_mlp --input articles.jsonl --n 1000
    python benchmarks/backends.py --config /tmp/est/config.yaml --stage1 /tmp/est/res/sub_stage1_multilingual-e5-small-q4-t256_mlp --input /tmp/est/score1000.jsonl --backends torch onnx onnx-int8 openvino

Embeds the first --n articles of --input (with `labels`) as score_articles.py does (study/scoring.py `Embedder`:
the bundle's recipe, phase 1's batches) once per backend, in one process, the backends one after another in the
order given (each model loaded and exported before its clock starts), and prints per backend: articles/s (the
embedding only: score_articles.py's scoring time is this plus the probe), the speed-up over torch, the cosine of
each article's embedding to torch's (min and mean), and the probe's MAE against the labels with its change from
torch's. The first backend is the reference (torch).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.backends import parse_backend  # noqa: E402
from study.config import load_config  # noqa: E402
from study.data import article_of, jsonl_records  # noqa: E402
from study.embedders import resolve_device, use_all_cores  # noqa: E402
from study.scoring import Embedder, load_stage1, recipe_parts, resolve_part  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config")
    p.add_argument("--stage1", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8", "openvino"])
    args = p.parse_args()
    for b in args.backends:
        parse_backend(b)
    cfg = load_config(args.config)
    stage = load_stage1(cfg, args.stage1, rule="plug-in")
    path = Path(args.input)
    texts, labels = [], []
    for n, rec in jsonl_records(path):
        texts.append(article_of(path, n, rec)[2])
        labels.append(rec["labels"])
        if len(texts) == args.n:
            break
    Y = np.asarray(labels, dtype=np.float64)
    device = resolve_device("cpu")
    print(f"{len(texts)} articles of {path}; {stage.meta['variant']} + {stage.meta['probe']}; cpu, "
          f"{use_all_cores()} threads")
    rows = []
    for backend in args.backends:
        parts = [resolve_part(cfg, recipe, fp, None, backend) for recipe, fp in recipe_parts(stage.meta)]
        embed = Embedder(cfg, parts, device)
        embed(texts[:8])   # warm-up: kernels, the runtime's first shapes
        t0 = time.perf_counter()
        X = embed(texts)
        seconds = time.perf_counter() - t0
        mae = float(np.mean(np.abs(stage.probe.predict(X) - Y)))
        rows.append((backend, seconds, X, mae))
        print(f"  {backend}: {len(texts) / seconds:.1f} articles/s, probe MAE {mae:.4f}", flush=True)
    _, t_ref, X_ref, mae_ref = rows[0]
    print(f"\n| backend | articles/s | x {rows[0][0]} | cosine min | cosine mean | probe MAE | change |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, seconds, X, mae in rows:
        cos = (X * X_ref).sum(1) / np.linalg.norm(X, axis=1) / np.linalg.norm(X_ref, axis=1)
        print(f"| {backend} | {len(texts) / seconds:.1f} | {t_ref / seconds:.2f} | {cos.min():.5f} | "
              f"{cos.mean():.5f} | {mae:.4f} | {mae - mae_ref:+.4f} |")
    print(json.dumps({b: {"seconds": s, "mae": m} for b, s, _, m in rows}))


if __name__ == "__main__":
    main()
