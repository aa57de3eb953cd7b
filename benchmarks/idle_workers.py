"""Later LightGBM fits in a process while joblib worker processes idle (issue 27): prints three fit times.

    python benchmarks/idle_workers.py

A 200 x 32, 300-round LightGBM fit on 2 threads (the best of two): with no workers, with the idle workers a
`Parallel` call left behind, and after shutting them down (what study/probes.py does after each parallel fit).
"""
import time

import lightgbm as lgb
import numpy as np
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 32)).astype(np.float32)
y = X[:, 0] + rng.normal(size=200)


def fit(threads: int, rounds: int):
    params = {"verbose": -1, "n_jobs": threads, "deterministic": True, "force_row_wise": True}
    return lgb.train(params, lgb.Dataset(X, y), rounds)


def seconds() -> float:
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        fit(2, 300)
        best = min(best, time.perf_counter() - t0)
    return best


print(f"fit, no workers:           {seconds():.2f} s")
Parallel(n_jobs=2, backend="loky")(delayed(fit)(1, 5) for _ in range(2))
print(f"fit, idle workers alive:   {seconds():.2f} s")
get_reusable_executor().shutdown(wait=True)
print(f"fit, workers shut down:    {seconds():.2f} s")
