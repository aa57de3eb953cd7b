"""Coverage of the 95% bootstrap CI of a mean over few articles, percentile against BCa (issue 25): prints numbers.

    python benchmarks/bca_coverage.py
    python benchmarks/bca_coverage.py --sizes 30 52 100 199 --sims 2000 --resamples 1000
    python benchmarks/bca_coverage.py --real results/predictions/<ds>_<a>_mlp_test.npz results/predictions/<ds>_<a>_ridge_test.npz

Simulated test sets whose true mean is known, drawn like the per-article values the study bootstraps:
- `article MAE`: one probe's per-article MAE, gamma(shape 2, scale 0.4) (mean 0.8, skew 1.4);
- `paired difference`: a probe's per-article MAE minus a correlated reference's (both gamma(2, 0.4) sharing half
  their draw), the values the comparison rule reads;
- `heavy tail`: log-normal (sigma 1), a test set with a few articles far off.
With `--real A B` (two predictions files of evaluate.py on the same test articles), instead: the real per-article
MAE of A and the real per-article differences A - B, the whole test split taken as the population (its mean the
truth) and each simulated test set drawn from it without replacement.
For each size, `--sims` test sets, each with its CI by study/metrics.py `bootstrap_ci` (percentile and BCa, the
same seed): the share of CIs that hold the true mean, its Monte-Carlo SE, and the misses below and above.
Nothing is written.
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from study.artifacts import read_npz  # noqa: E402
from study.metrics import bootstrap_ci  # noqa: E402

SHAPE, SCALE = 2.0, 0.4


def draw(kind: str, rng, n: int) -> np.ndarray:
    if kind == "article MAE":
        return rng.gamma(SHAPE, SCALE, n)
    if kind == "paired difference":
        shared = rng.gamma(SHAPE / 2, SCALE, n)
        return (shared + rng.gamma(SHAPE / 2, SCALE, n)) - (shared + rng.gamma(SHAPE / 2, SCALE, n)) * 0.9
    return rng.lognormal(0.0, 1.0, n)


TRUTH = {"article MAE": SHAPE * SCALE, "paired difference": SHAPE * SCALE * 0.1, "heavy tail": math.exp(0.5)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 52, 100, 199])
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", nargs=2, metavar=("A", "B"), help="two predictions .npz files of one test split")
    args = parser.parse_args()
    populations = {}
    if args.real:
        a, b = (read_npz(f, "predictions", "give evaluate.py's predictions files") for f in args.real)
        if not np.array_equal(a["ids"], b["ids"]):
            sys.exit("error: the two predictions files hold other articles")
        err_a, err_b = (np.abs(x["y_pred"].astype(np.float64) - x["y_true"]).mean(axis=1) for x in (a, b))
        populations = {"real article MAE": err_a, "real paired diff.": err_a - err_b}
    print(f"{'values':18s} {'n':>4s} {'method':10s} {'coverage':>9s} {'MC SE':>6s} {'miss low':>8s} {'miss high':>9s}")
    for kind, truth in ({k: v.mean() for k, v in populations.items()} if populations else TRUTH).items():
        for n in args.sizes:
            rng = np.random.default_rng([args.seed, n])
            sets = [populations[kind][rng.choice(len(populations[kind]), n, replace=False)] if populations else
                    draw(kind, rng, n) for _ in range(args.sims)]
            for method in ("percentile", "BCa"):
                cis = np.array([bootstrap_ci(v, args.resamples, i, method=method) for i, v in enumerate(sets)])
                low, high = (cis[:, 1] < truth).mean(), (cis[:, 0] > truth).mean()
                cover = 1 - low - high
                print(f"{kind:18s} {n:4d} {method:10s} {cover:9.3f} {math.sqrt(cover * (1 - cover) / args.sims):6.3f} "
                      f"{low:8.3f} {high:9.3f}", flush=True)


if __name__ == "__main__":
    main()
