"""Coverage of the 95% bootstrap CI of a mean over few articles, percentile against BCa (issue 25): prints numbers.

    python benchmarks/bca_coverage.py
    python benchmarks/bca_coverage.py --sizes 30 52 100 199 --sims 2000 --resamples 1000

Simulated test sets whose true mean is known, drawn like the per-article values the study bootstraps:
- `article MAE`: one probe's per-article MAE, gamma(shape 2, scale 0.4) (mean 0.8, skew 1.4);
- `paired difference`: a probe's per-article MAE minus a correlated reference's (both gamma(2, 0.4) sharing half
  their draw), the values the comparison rule reads;
- `heavy tail`: log-normal (sigma 1), a test set with a few articles far off.
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
    args = parser.parse_args()
    print(f"{'values':18s} {'n':>4s} {'method':10s} {'coverage':>9s} {'MC SE':>6s} {'miss low':>8s} {'miss high':>9s}")
    for kind, truth in TRUTH.items():
        for n in args.sizes:
            rng = np.random.default_rng([args.seed, n])
            sets = [draw(kind, rng, n) for _ in range(args.sims)]
            for method in ("percentile", "BCa"):
                cis = np.array([bootstrap_ci(v, args.resamples, i, method=method) for i, v in enumerate(sets)])
                low, high = (cis[:, 1] < truth).mean(), (cis[:, 0] > truth).mean()
                cover = 1 - low - high
                print(f"{kind:18s} {n:4d} {method:10s} {cover:9.3f} {math.sqrt(cover * (1 - cover) / args.sims):6.3f} "
                      f"{low:8.3f} {high:9.3f}", flush=True)


if __name__ == "__main__":
    main()
