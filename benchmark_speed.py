"""Phase 4: embedding and probe speed, load time, peak memory -> results/benchmarks/.

    python benchmark_speed.py --dataset uplifting_v5 --models multilingual-e5-large bge-m3
    python benchmark_speed.py --data-dir ../shared/data/sustainability_real --random-weights --device cuda
    python benchmark_speed.py --data-dir ../shared/data/ai-engineering-practice_real --models minilm-l6-en-demo --n 100 --quality-check

Per model: load time (cold = first load in this process, warm = second), throughput in
articles/s and tokens/s on the first --n test articles (topped up from train) cut at the
model's max tokens, median of --runs timed runs after a warm-up, real tokenization
included; achieved TFLOP/s from the real token lengths and its share of the device's
dense peak; peak GPU memory (peak process RSS on CPU); batching figures; the reference
setting (fp32, batch 32, same length-sorted batches) for the speed-up. Per probe (ridge,
mlp, lightgbm): training time and prediction latency on the cached embeddings of
embed_articles.py (skipped when there are none), and the end-to-end cost per article
against the fine-tuned model's fine_tuned_ms_per_article from config.yaml.

--random-weights builds each model from <shapes-dir>/<model>/config.json (or the model's
own config.json when it is a local folder) with random weights and a BPE tokenizer trained
on the dataset's train text: speed and memory equal the real model's, load time means
nothing. --quality-check (real weights) compares half-precision embeddings with fp32 ones:
cosine and the change in ridge test MAE (target: cosine >= 0.999, |delta MAE| < 0.005).

Writes results/benchmarks/<dataset>_benchmarks.json (or --output) and prints a table.
"""
import argparse
from pathlib import Path

import torch

from study import cli
from study.artifacts import write_json
from study.benchmark import Options, format_table, run_benchmark
from study.config import load_config
from study.data import load_splits, resolve_dataset
from study.embedders import resolve_device, resolve_dtype, use_all_cores

SHAPES_DIR = Path(__file__).resolve().parent.parent / "shared" / "model_shapes"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(parser)
    parser.add_argument("--device", help="override config device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--n", type=int, default=1000, help="articles embedded per run (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up; the median counts (default 3)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--batch-size", type=int, help="override the model's batch_size")
    parser.add_argument("--token-budget", type=int, help="override the model's token_budget (0: none)")
    parser.add_argument("--random-weights", action="store_true", help="random-weight twins from --shapes-dir")
    parser.add_argument("--shapes-dir", default=str(SHAPES_DIR), help=f"architecture folders (default {SHAPES_DIR})")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense peak for the dtype (default: table by name)")
    parser.add_argument("--no-reference", action="store_true", help="skip the fp32 batch-32 reference setting")
    parser.add_argument("--quality-check", action="store_true",
                        help="half precision vs fp32: cosine and ridge test MAE change (real weights only)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: every core this process may use)")
    parser.add_argument("--output", help="JSON path (default results/benchmarks/<dataset>_benchmarks.json)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    models = cfg.select_models(args.models)
    splits = load_splits(dataset, cfg.score_range)
    device = resolve_device(args.device or cfg.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device.type == "cpu":
        use_all_cores()
    dtype = resolve_dtype(device, args.dtype)
    opts = Options(n=args.n, runs=args.runs, dtype=args.dtype, batch_size=args.batch_size,
                   token_budget=args.token_budget, max_tokens=args.max_tokens, random_weights=args.random_weights,
                   shapes_dir=args.shapes_dir, peak_tflops=args.peak_tflops, reference=not args.no_reference,
                   quality_check=args.quality_check, threads=torch.get_num_threads())

    doc = run_benchmark(cfg, dataset, models, splits, device, dtype, opts, say=lambda s: print(s, flush=True))
    out = Path(args.output) if args.output else cfg.results_path / "benchmarks" / f"{dataset.name}_benchmarks.json"
    write_json(out, doc)
    print()
    print(format_table(doc))
    print(f"\nbenchmark: {out}")


if __name__ == "__main__":
    cli.run(main)
