"""What validation chose for a probe, in words: the ridge alpha (logistic C), the MLP's best epoch, LightGBM's
iterations, each seed ensemble's choices as their range over the members, and the yes/no threshold.

Plain text from the probe's `selected()` record (the training summary's `selected`), so the report and the
comparison read it without importing the probes (torch, scikit-learn).
"""
from __future__ import annotations


def describe_selected(selected: dict | None) -> str:
    """One line for what validation chose: the ridge alpha, the MLP's best epoch, LightGBM's iterations."""
    s = selected or {}
    if "members" in s:   # a seed ensemble: each choice as its range over the members
        ms, n = s["members"], len(s["members"])
        if ms and "best_epoch" in ms[0]:
            what = f"best epoch {_span(m['best_epoch'] for m in ms)} of {_span(m['epochs_run'] for m in ms)}"
        elif ms and "best_iterations" in ms[0]:
            what = "iterations " + ", ".join(_span(its) for its in zip(*(m["best_iterations"] for m in ms)))
        else:
            what = "; ".join(describe_selected(m) for m in ms)
        return f"{what} over {n} seed{'s' * (n != 1)}" + _threshold(s)
    edge = " (at the edge of the grid)" if at_grid_edge(s) else ""
    if "C" in s:
        return f"C {s['C']:g}{edge}" + _threshold(s)
    if "alpha" in s:
        return f"alpha {s['alpha']:g}{edge}"
    if "best_epoch" in s:
        return f"best epoch {s['best_epoch']} of {s.get('epochs_run', '?')}" + _threshold(s)
    if "best_iterations" in s:
        return "iterations " + ", ".join(str(i) for i in s["best_iterations"]) + _threshold(s)
    return "—"


def at_grid_edge(selected: dict | None) -> bool:
    """Whether validation chose the ridge alpha or the logistic C at the lowest or highest value of its grid (the
    flag `selected()` records beside it): the best value may lie beyond the grid."""
    s = selected or {}
    return bool(s.get("alpha_at_grid_edge") or s.get("C_at_grid_edge"))


def _span(values) -> str:
    """'12' when every value is 12, else 'lowest-highest'."""
    values = sorted(values)
    return f"{values[0]}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


def _threshold(s: dict) -> str:
    return f", threshold {s['threshold']:.3f}" if "threshold" in s else ""
