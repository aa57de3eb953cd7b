"""Phase 4: embedding and probe speed, load time, peak memory -> results/benchmarks/.

    python benchmark_speed.py --dataset uplifting_v5 --models multilingual-e5-large bge-m3
    python benchmark_speed.py --data-dir ../shared/data/sustainability_real --random-weights --device cuda
    python benchmark_speed.py --data-dir ../shared/data/ai-engineering-practice_real --models minilm-l6-en-demo --n 100 --quality-check

Per model: load time (cold and warm), throughput in articles/s and tokens/s on the first
--n test articles (topped up from train) cut at the model's max tokens, achieved TFLOP/s
and its share of the device's peak, peak memory, batching figures, and the speed-up over
the reference setting (fp32, batch 32). Per probe (--probes): training time and prediction
latency on the cached embeddings of embed_articles.py (skipped when there are none), and
the end-to-end cost per article against the fine-tuned model's fine_tuned_ms_per_article.
How each figure is measured: `METHOD` in study/benchmark.py, stored in the JSON. A chunked
variant (<model>-c<N>, or --chunks) is timed on its windowed path, without the reference
setting; a concatenation a+b is not timed again: its cost is its parts' summed.

--random-weights builds each model from <shapes-dir>/<model>/config.json (default: the
architecture shapes shipped in study/model_shapes; else the model's own config.json when it
is a local folder) with random weights and a BPE tokenizer trained on the dataset's train
text: speed and memory equal the real model's, load time means nothing. --quality-check
(real weights) compares half-precision embeddings with fp32 ones, or with --backend onnx (--int8) / openvino
the runtime's embeddings with torch fp32's (the model timed in that runtime on the CPU; the reference stays
torch fp32). --packed runs padding-free batches
(BERT / XLM-R encoders; the reference stays padded); --st-compare also times plain
SentenceTransformer.encode on the same model and texts. Each model's tokenization time and its
share of the wall time are printed beside the former two-pass tokenization's.

Writes results/benchmarks/<dataset>_benchmarks.json (or --output) and prints a table.
"""
from pathlib import Path

import torch

from study import cli, paths
from study.backends import backend_name
from study.benchmark import Options, benchmark, format_table
from study.config import load_config, task_probes, with_parts
from study.data import load_splits, resolve_dataset
from study.embedders import resolve_device, resolve_dtype, use_all_cores

SHAPES_DIR = Path(__file__).resolve().parent / "study" / "model_shapes"


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_probes(parser)
    cli.add_speed(parser)
    cli.add_chunks(parser)
    parser.add_argument("--device", type=cli.device, help="override config device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--n", type=cli.positive_int, default=1000, help="articles embedded per run (default 1000)")
    parser.add_argument("--runs", type=cli.positive_int, default=3,
                        help="timed runs after the warm-up; the median counts (default 3)")
    parser.add_argument("--token-budget", type=cli.non_negative_int, help="override the model's token_budget (0: none)")
    parser.add_argument("--random-weights", action="store_true", help="random-weight twins from --shapes-dir")
    parser.add_argument("--shapes-dir", default=str(SHAPES_DIR), help=f"architecture folders (default {SHAPES_DIR})")
    parser.add_argument("--peak-tflops", type=cli.positive_float, help="the device's dense peak for the dtype (default: table by name)")
    parser.add_argument("--no-reference", action="store_true", help="skip the fp32 batch-32 reference setting")
    parser.add_argument("--quality-check", action="store_true",
                        help="half precision vs fp32: cosine and ridge test MAE change (real weights only)")
    parser.add_argument("--packed", action="store_true",
                        help="padding-free batches (BERT / XLM-R encoders; variable-length attention on CUDA)")
    parser.add_argument("--st-compare", action="store_true",
                        help="also time plain SentenceTransformer.encode on the same model and texts")
    parser.add_argument("--threads", type=cli.positive_int,
                        help="CPU threads for torch (default: every core this process may use)")
    cli.add_backend(parser, "torch")
    parser.add_argument("--output", help="JSON path (default results/benchmarks/<dataset>_benchmarks.json)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cli.hold_results(cfg)   # one run at a time in a results folder
    dataset = resolve_dataset(cfg, args.dataset, args.data_dir)
    variants = with_parts(cfg.select_variants(args.models, args.max_tokens, chunks=args.chunks))
    splits = load_splits(dataset, cfg.score_range)
    device = resolve_device(args.device or cfg.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device.type == "cpu":
        use_all_cores()
    dtype = resolve_dtype(device, args.dtype)
    opts = Options(n=args.n, runs=args.runs, dtype=args.dtype, batch_size=args.batch_size,
                   token_budget=args.token_budget, probes=tuple(task_probes(dataset.task, args.probes)), random_weights=args.random_weights,
                   shapes_dir=args.shapes_dir, peak_tflops=args.peak_tflops, reference=not args.no_reference,
                   quality_check=args.quality_check, threads=torch.get_num_threads(), packed=args.packed,
                   st_compare=args.st_compare, backend=backend_name(args.backend or "torch", args.int8))

    out = Path(args.output) if args.output else paths.benchmark(cfg, dataset.name)
    record = benchmark(cfg, dataset, variants, splits, device, dtype, opts, out, say=lambda s: print(s, flush=True))
    print()
    print(format_table(record.model_dump(mode="json", by_alias=True, exclude_unset=True)))
    print(f"\nbenchmark: {out}")


if __name__ == "__main__":
    cli.run(main)
