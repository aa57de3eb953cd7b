"""Phase 2's cost, probe by probe, on embeddings already cached (issue 31): prints numbers.

    python benchmarks/probe_phase.py --config /tmp/x/config.yaml --data-dir /tmp/real/sus_sub --models minilm-l6-en-demo
    python benchmarks/probe_phase.py ... --probes lightgbm --seeds 5
    python benchmarks/probe_phase.py ... --code /tmp/base          # the same, with another checkout's study/
    python benchmarks/probe_phase.py ... --code /tmp/base --code .  # both, alternating, --repeat times

Fits each probe exactly as train_probes.py does (study.probes.make_probe with the probe settings of the checkout's
own config.yaml, `probe_seeds` and the embeddings of --config, the validation split choosing), in a child process per (code, probe) so one checkout's imports
and threads never reach the other, and prints per probe: fit seconds (scaler and validation choice included,
loading excluded), articles x dimensions x seeds per second, the ensemble's validation and test MAE and each
seed's test MAE (mean and SD over seeds). Nothing is written. With two `--code` folders the runs alternate
(A B A B ...), on the same cores, so a slow moment hits both alike; the summary line gives each one's median
seconds and their ratio.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(args) -> None:
    """Fit one probe with the `study` package of args.code and print one JSON line."""
    code = args.code[-1]
    sys.path.insert(0, str(Path(code).resolve()))
    import numpy as np

    from study.cache import load_checked
    from study.config import load_config
    from study.data import resolve_dataset
    from study.probes import make_probe

    cfg = load_config(args.config)
    dataset = resolve_dataset(cfg, None, args.data_dir)
    variant = cfg.select_variants([args.model], None)[0]
    train, val, test = (load_checked(cfg, dataset, variant, s) for s in ("train", "val", "test"))
    seeds = args.seeds or cfg.seeds_for(dataset.path)
    settings = getattr(load_config(Path(code) / "config.yaml").probe_methods, args.probe)   # each checkout's own
    probe = make_probe(args.probe, settings, score_range=cfg.score_range, seed=cfg.random_seed,
                       device=args.mlp_device, n_seeds=seeds)
    t0 = time.perf_counter()
    probe.fit(train["embeddings"], train["labels"], val["embeddings"], val["labels"])
    seconds = time.perf_counter() - t0
    Y = test["labels"]
    test_mae = float(np.mean(np.abs(probe.predict(test["embeddings"]) - Y)))
    members = [float(np.mean(np.abs(p - Y))) for p in probe.member_outputs(test["embeddings"])] \
        if hasattr(probe, "member_outputs") else [test_mae]
    n, d = train["labels"].shape
    member_val = [float(v) for v in getattr(probe, "member_val_", [probe.val_mae_])]
    print(json.dumps({"code": code, "probe": args.probe, "seconds": seconds, "n_train": n, "dims": d, "member_val_mae": member_val,
                      "seeds": seeds if hasattr(probe, "member_outputs") else 1, "val_mae": float(probe.val_mae_),
                      "test_mae": test_mae, "member_test_mae": members}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--data-dir", required=True, help="the dataset folder whose caches to read")
    parser.add_argument("--models", nargs="+", help="one config model (variant) name")
    parser.add_argument("--probes", nargs="+", default=["ridge", "mlp", "lightgbm"])
    parser.add_argument("--seeds", type=int, default=None, help="members per stochastic probe (default: config)")
    parser.add_argument("--code", action="append", default=None,
                        help="a checkout whose study/ to time (repeat for an alternating comparison; default: this one)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every (code, probe)")
    parser.add_argument("--mlp-device", default="cpu")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if not args.models:
        parser.error("--models: give one config model (variant) name")
    codes = [str(Path(c).resolve()) for c in (args.code or [str(REPO)])]
    runs = []
    for r in range(args.repeat):
        for probe in args.probes:
            for code in codes:
                cmd = [sys.executable, __file__, "--child", "--config", args.config, "--data-dir", args.data_dir,
                       "--model", args.models[0], "--probe", probe, "--code", code, "--mlp-device", args.mlp_device] + (["--seeds", str(args.seeds)] if args.seeds else [])
                out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
                if out.returncode:
                    sys.exit(f"error: {code} {probe}: {out.stderr.strip().splitlines()[-1:]}")
                rec = json.loads(out.stdout.strip().splitlines()[-1])
                runs.append(rec)
                m, v = rec["member_test_mae"], rec["member_val_mae"]
                sd = statistics.stdev(m) if len(m) > 1 else 0.0
                vsd = statistics.stdev(v) if len(v) > 1 else 0.0
                rate = rec["n_train"] * rec["dims"] * rec["seeds"] / rec["seconds"]
                print(f"round {r + 1} {code}: {probe:8s} {rec['seconds']:7.1f} s  {rate:9.0f} article x dim x seed/s  "
                      f"val MAE {rec['val_mae']:.4f}  test MAE {rec['test_mae']:.4f}  "
                      f"seeds' val MAE {statistics.mean(v):.4f} ± {vsd:.4f}, test MAE {statistics.mean(m):.4f} ± {sd:.4f} (n={len(m)})", flush=True)
    for code in codes:
        per = {p: statistics.median(x["seconds"] for x in runs if x["code"] == code and x["probe"] == p)
               for p in args.probes}
        print(f"median {code}: " + ", ".join(f"{p} {s:.1f} s" for p, s in per.items()) + f"; total {sum(per.values()):.1f} s")
    if len(codes) == 2:
        tot = [sum(statistics.median(x["seconds"] for x in runs if x["code"] == c and x["probe"] == p)
                   for p in args.probes) for c in codes]
        print(f"speed-up {codes[1]} over {codes[0]}: {tot[0] / tot[1]:.2f}x")


if __name__ == "__main__":
    main()
