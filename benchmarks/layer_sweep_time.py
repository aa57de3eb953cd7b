"""Phase 1 encode time of a layer sweep against the model's own output, same articles, one process (issue 28).

    python benchmarks/layer_sweep_time.py --config /tmp/layers/config.yaml --data-dir /tmp/layers/sus_small \
        --model multilingual-e5-small-q4 --max-tokens 256 --layers 4 6 8 10 12 --n 300

Runs the test split's first --n articles in ABBA order (own output, layers, layers, own output) and prints the
seconds, their ratio and the largest difference between the last requested layer and the model's own output.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from study.config import load_config  # noqa: E402
from study.data import load_splits, resolve_dataset  # noqa: E402
from study.embedders import batching_for, embed_texts, load_model, split_layers, use_all_cores, with_layers  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--config", required=True)
p.add_argument("--data-dir", required=True)
p.add_argument("--model", required=True)
p.add_argument("--max-tokens", type=int, required=True)
p.add_argument("--layers", type=int, nargs="+", required=True)
p.add_argument("--n", type=int, default=300)
args = p.parse_args()
cfg = load_config(args.config)
ds = resolve_dataset(cfg, None, args.data_dir)
texts = load_splits(ds, cfg.score_range, ("test",))["test"].texts[:args.n]
threads = use_all_cores()
spec = cfg.model(args.model)
enc = load_model(spec, cfg.model_location(args.model), torch.device("cpu"), "float32", args.model, args.max_tokens)
rows, budget = batching_for(torch.device("cpu"), spec.batch_size or cfg.batch_size, spec.token_budget, args.max_tokens)
layered = with_layers(enc, args.layers)
seconds, embs = {"own_output": [], "layers": []}, {}
for which in ("own_output", "layers", "layers", "own_output"):
    t0 = time.perf_counter()
    embs[which], _, _ = embed_texts(enc if which == "own_output" else layered, texts, max_tokens=args.max_tokens,
                                    batch_size=rows, token_budget=budget, prefix=spec.prefix)
    seconds[which].append(time.perf_counter() - t0)
last = split_layers(embs["layers"], args.layers)[args.layers[-1]]
print(json.dumps({"articles": len(texts), "threads": threads, "layers": args.layers, "seconds": seconds,
                  "ratio": sum(seconds["layers"]) / sum(seconds["own_output"]),
                  "max_abs_diff_last_layer_vs_own_output": float(np.abs(last - embs["own_output"]).max())}, indent=1))
