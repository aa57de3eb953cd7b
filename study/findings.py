"""The study's findings, each computed once by a plain function over the JSON results.

The report's executive summary and its sections both call these, so a number cannot
differ between the two. Inputs are the dicts of the evaluation JSON (`ev`, layout in
study/results.py) and of the benchmark JSON (`bench`); outputs are plain dicts and lists.
"""
from __future__ import annotations

import math

from study.metrics import band_limits, finite, success_band, summed_rate
from study.results import chosen, learning_curves, probe_entries, sweep_groups


def overlap(a, b) -> bool:
    """Do two [low, high] intervals overlap?"""
    return bool(a and b) and a[0] <= b[1] and b[0] <= a[1]


def band(mae, base: float | None, margins: dict[str, float]) -> str | None:
    """The success band of a test MAE against a dataset's baseline MAE and band margins (the evaluation's
    `baseline_mae` and `success_bands`); None without a baseline."""
    if not base or not finite(mae) or not {"closes_gap", "partial"} <= set(margins):
        return None
    return success_band(mae, base, margins)


def band_rule(base: float | None, margins: dict[str, float]) -> str | None:
    """The bands in words, with this dataset's limits (baseline MAE, margins); None without a baseline."""
    if not base or not {"closes_gap", "partial"} <= set(margins):
        return None
    closes, partial = band_limits(base, margins)
    return (f"on the test MAE of the model chosen on validation: closes the gap at or below {closes:.2f} "
            f"(baseline {base:.2f} + {margins['closes_gap']:g}), partial at or below {partial:.2f} "
            f"(+ {margins['partial']:g}), no improvement above")


def _is_bge(variant: str, entry: dict) -> bool:
    return "bge-m3" in variant.lower() or "bge-m3" in str(entry.get("model_name", "")).lower()


def bge_answer(ev: dict) -> dict | None:
    """Does bge-m3 close the gap? None when no bge-m3 variant was evaluated, else
    {"answers": [one per bge-m3 variant: variant, probe, mae, ci, band, gap, vs_baseline,
    overlaps_rival], "best": the answer of the variant chosen on validation, "rival": the best
    other model's {variant, probe, mae, ci} or None}."""
    models = ev["models"]
    bge = [(v, p, m) for v, p, m in chosen(ev) if _is_bge(v, models[v])]
    if not bge:
        return None
    others = [(v, p, m) for v, p, m in chosen(ev) if not _is_bge(v, models[v])]
    rival = min(others, key=lambda c: c[2]["val_mae"]) if others else None
    base = ev.get("baseline_mae")
    answers = [{"variant": v, "probe": p, "mae": m["overall_mae"], "ci": m.get("mae_ci95"), "val_mae": m["val_mae"],
                "band": band(m["overall_mae"], base, ev["success_bands"]), "gap": m["overall_mae"] - base if base else None,
                "vs_baseline": m.get("vs_baseline"),
                "overlaps_rival": overlap(m.get("mae_ci95"), rival[2].get("mae_ci95")) if rival else None}
               for v, p, m in bge]
    return {"answers": answers, "best": min(answers, key=lambda a: a["val_mae"]),
            "rival": None if rival is None else {"variant": rival[0], "probe": rival[1],
                                                 "mae": rival[2]["overall_mae"], "ci": rival[2].get("mae_ci95")}}


def truncation_rows(ev: dict) -> list[dict]:
    """Per model, with its chosen probe: how many test articles are cut and their MAE against whole ones."""
    rows = []
    for v, p, m in chosen(ev):
        e, t = ev["models"][v], m.get("truncation") or {}
        cut, whole = t.get("truncated") or {}, t.get("not_truncated") or {}
        diff = cut["mae"] - whole["mae"] if finite(cut.get("mae")) and finite(whole.get("mae")) else None
        rows.append({"variant": v, "probe": p, "max_tokens": t.get("max_tokens", e.get("max_tokens")),
                     "truncated_fraction": e.get("truncated_fraction"), "mean_token_count": e.get("mean_token_count"),
                     "n_cut": cut.get("n", 0), "mae_cut": cut.get("mae"), "n_whole": whole.get("n", 0),
                     "mae_whole": whole.get("mae"), "difference": diff})
    return rows


def sweeps(ev: dict) -> dict[str, list[dict]]:
    """Models evaluated at several max tokens: {model: [{variant, max_tokens, probe, mae, ci, vs_longest}], by max
    tokens}; vs_longest is the paired difference against the model's longest variant (same probe, same articles)."""
    rows = {v: {"variant": v, "max_tokens": ev["models"][v].get("max_tokens"), "probe": p, "mae": m["overall_mae"],
                "ci": m.get("mae_ci95"), "vs_longest": m.get("vs_longest")} for v, p, m in chosen(ev)}
    return {k: sorted((rows[v] for v in g), key=lambda r: r["max_tokens"] or 0)
            for k, g in sweep_groups(ev["models"]).items()}


def reading(difference: dict | None) -> str | None:
    """A paired difference (first minus second) in words: 'lower' or 'higher' when its 95% CI excludes zero."""
    if not difference or not difference.get("difference_ci95"):
        return None
    lo, hi = difference["difference_ci95"]
    return "lower" if hi < 0 else "higher" if lo > 0 else "not distinguishable"


def chunking_rows(ev: dict) -> list[dict]:
    """Per chunked variant whose truncated twin was evaluated, with the chunked variant's chosen probe (the twin
    with the same probe): window, windows per article, share cut after max_windows, and the paired differences
    chunked − truncated over all test articles and over those truncation cut, each with its reading."""
    rows = []
    for v, p, m in chosen(ev):
        vs, e = m.get("vs_truncated"), ev["models"][v]
        if vs:
            rows.append({"variant": v, "truncated": vs["truncated"], "probe": p, **(e.get("chunks") or {}),
                         "all": vs["all"], "cut": vs["cut"], "reading_all": reading(vs["all"]),
                         "reading_cut": reading(vs["cut"])})
    return rows


def concatenation_rows(ev: dict) -> list[dict]:
    """Per concatenation with its chosen probe: test MAE and CI, and against each evaluated part (same probe) the
    paired difference concatenation − part and its reading; `beats_all` when every difference is 'lower'."""
    rows = []
    for v, p, m in chosen(ev):
        parts = ev["models"][v].get("parts")
        if parts:
            vs = m.get("vs_parts") or {}
            against = [{"part": q, **vs[q], "reading": reading(vs[q])} for q in parts if q in vs]
            rows.append({"variant": v, "probe": p, "mae": m["overall_mae"], "ci": m.get("mae_ci95"),
                         "parts": parts, "against": against,
                         "beats_all": bool(against) and len(against) == len(parts)
                         and all(a["reading"] == "lower" for a in against)})
    return rows


def throughput(ev: dict, bench: dict | None, variant: str) -> float | None:
    """A variant's embedding throughput (articles/s) in the benchmark; a concatenation not benchmarked itself
    costs its parts' summed: 1 / sum of 1 / articles per second."""
    measured = (bench or {}).get("models") or {}
    rate = (measured.get(variant) or {}).get("articles_per_s")
    if finite(rate):
        return rate
    parts = [(measured.get(q) or {}).get("articles_per_s") for q in ev["models"][variant].get("parts") or []]
    return summed_rate(parts) if parts and all(finite(r) and r > 0 for r in parts) else None


def speed_points(ev: dict, bench: dict | None) -> list[dict]:
    """Each benchmarked model with its chosen probe: {label, variant, probe, mae, ci, articles_per_s}."""
    return [{"label": f"{v} + {p}", "variant": v, "probe": p, "mae": m["overall_mae"], "ci": m.get("mae_ci95"),
             "articles_per_s": throughput(ev, bench, v)}
            for v, p, m in chosen(ev) if throughput(ev, bench, v) is not None]


def speed_front(points: list[dict]) -> list[dict]:
    """The points no other point beats on both speed and MAE, fastest first."""
    front = [p for p in points if not any(q["mae"] < p["mae"] and q["articles_per_s"] > p["articles_per_s"]
                                          for q in points)]
    return sorted(front, key=lambda p: -p["articles_per_s"])


def probe_comparisons(ev: dict) -> list[dict]:
    """Every probe set against its model's chosen probe: {variant, probe, val_mae, mae, ci, against, difference,
    difference_ci}, where against is 'chosen on validation' or the comparison rule's verdict of this probe against
    the chosen one (paired on the same test articles, evaluate.py `vs_chosen`: better, worse, equivalent,
    inconclusive)."""
    rows = []
    for v, c, cm in chosen(ev):
        for p, m in ev["models"][v]["probes"].items():
            d = m.get("vs_chosen")
            if p == c:
                against = "chosen on validation"
            elif d is None:
                against = "not compared (rerun evaluate.py)"
            else:
                against = d["verdict"]
            rows.append({"variant": v, "probe": p, "val_mae": m.get("val_mae"), "mae": m["overall_mae"],
                         "ci": m.get("mae_ci95"), "against": against,
                         "difference": d["mae_difference"] if d else None, "difference_ci": d["difference_ci95"] if d else None})
    return rows


def probe_verdict_counts(ev: dict) -> dict[str, int]:
    """{verdict: count} of the other probes against each model's chosen probe (paired rule)."""
    counts: dict[str, int] = {}
    for r in probe_comparisons(ev):
        if r["against"] != "chosen on validation":
            counts[r["against"]] = counts.get(r["against"], 0) + 1
    return counts


def chosen_counts(ev: dict) -> dict[str, int]:
    """{probe: number of models whose probe chosen on validation it is}."""
    counts: dict[str, int] = {}
    for _, p, _ in chosen(ev):
        counts[p] = counts.get(p, 0) + 1
    return counts


# -- screening (study/screening.py computes the numbers in phase 3) ------------------------------
def screening_rows(ev: dict, bench: dict | None = None) -> list[dict]:
    """One row per model + probe + recall target: the threshold chosen on validation and its test
    results; with benchmark results, the two-stage scorer's cost per article and speed-up."""
    setup = ev.get("screening_setup") or {}
    ft = setup.get("fine_tuned_ms_per_article")
    e2e = (bench or {}).get("end_to_end") or {}
    rows = []
    for v, p, m in probe_entries(ev):
        for t in (m.get("screening") or {}).get("thresholds") or []:
            if t.get("threshold") is None:
                continue
            test = t["test"]
            row = {"variant": v, "probe": p, "target": t["target_recall"], "threshold": t["threshold"],
                   "val_skip_share": t["val"]["skip_share"], "val_recall": t["val"]["recall"],
                   **{k: test[k] for k in ("skip_share", "skip_share_ci95", "recall", "recall_ci95", "skipped_mae",
                                           "skipped_mae_ci95", "n_skipped", "n")},
                   "ms_per_article": None, "speedup": None}
            stage1 = ((e2e.get(v) or {}).get(p) or {}).get("ms_per_article")
            if finite(stage1) and ft:
                cost = [stage1 + (1 - test["skip_share"]) * f for f in ft]
                row.update(ms_per_article=cost, speedup=[f / c for f, c in zip(ft, cost)])
            rows.append(row)
    return rows


def best_screening(ev: dict, bench: dict | None = None) -> dict[float, dict]:
    """{recall target: the row whose validation skip share is largest} (test results only reported)."""
    best: dict[float, dict] = {}
    for row in screening_rows(ev, bench):
        if row["target"] not in best or row["val_skip_share"] > best[row["target"]]["val_skip_share"]:
            best[row["target"]] = row
    return best


def screening_curves(ev: dict) -> dict[str, dict]:
    """{'variant + probe': test curve} of each model's chosen probe."""
    return {f"{v} + {p}": m["screening"]["curve"] for v, p, m in chosen(ev) if ((m.get("screening") or {}).get("curve") or {}).get("threshold")}


def training_cost(ev: dict) -> list[dict]:
    """Per model + probe: seconds to embed train + val (from the caches' records) plus the probe's fit time,
    against the fine-tuned model's training hours."""
    hours = (ev.get("screening_setup") or {}).get("fine_tuned_training_hours")
    rows = []
    for v, p, m in probe_entries(ev):
        cost = ev["models"][v].get("embedding_cost") or {}
        parts = [cost.get(s) or {} for s in ("train", "val")]
        embed = sum(x["seconds"] for x in parts) if all(finite(x.get("seconds")) for x in parts) else None
        total = embed + m["train_seconds"] if embed is not None and finite(m.get("train_seconds")) else None
        rows.append({"variant": v, "probe": p, "embedding_seconds": embed, "probe_seconds": m.get("train_seconds"),
                     "total_seconds": total, "device": ", ".join(parts[0].get("devices") or []) or None,
                     "share_of_fine_tuned": [total / (h * 3600) for h in hours] if total and hours else None})
    return rows


def article_score_rows(ev: dict) -> list[tuple[str, str, dict]]:
    """(variant, probe, article-score figures: weighted MAE, tier accuracy, confusion, within ±0.5 / ±1.0)."""
    return [(v, p, m["article_scores"]) for v, p, m in probe_entries(ev) if m.get("article_scores")]


def frozen_base(ev: dict) -> dict | None:
    """The fine-tuned model's own base, frozen (config role frozen_base), with its chosen probe, if evaluated."""
    hits = [{"variant": v, "probe": p, "mae": m["overall_mae"], "ci": m.get("mae_ci95"), "val_mae": m["val_mae"]}
            for v, p, m in chosen(ev) if ev["models"][v].get("role") == "frozen_base"]
    return min(hits, key=lambda h: h["val_mae"]) if hits else None


# -- would more labels help? (learning curve, train_probes.py --train-fractions) -----------------
CURVE_RULE = ("the last step of each curve decides, from the full training split against the largest subset: "
              "the paired difference of per-article test MAE (full minus subset, the same test articles) with "
              "its 95% bootstrap CI. Wholly below zero: still falling (the last added labels lowered the error, "
              "so more labels would probably help); containing zero: flat (no change distinguishable from "
              "noise at that step, so more labels of the same kind are unlikely to help much); wholly above "
              "zero: rising (the error grew)")


def learning_curve_rows(ev: dict) -> list[dict]:
    """One row a point of every learning curve: {variant, probe, fraction, n_train, mae, ci, val_mae,
    difference, difference_ci} (difference: against the point before, None for the first)."""
    rows = []
    for v, p, points in learning_curves(ev):
        for point in points:
            step = point.get("vs_previous") or {}
            rows.append({"variant": v, "probe": p, "fraction": point.get("fraction"), "n_train": point["n_train"],
                         "mae": point["test_mae"], "ci": point["mae_ci95"], "val_mae": point.get("val_mae"),
                         "difference": step.get("mae_difference"), "difference_ci": step.get("difference_ci95")})
    return rows


def curve_reading(points: list[dict]) -> dict:
    """The reading of one learning curve by `CURVE_RULE`: {reading, n_first, mae_first, n_previous, n_last,
    mae_last, difference, difference_ci, per_doubling}; reading is 'still falling', 'flat', 'rising' or
    'one point' (nothing to compare). per_doubling: the last step's difference per doubling of the
    training articles (difference / log2(n_last / n_previous))."""
    first, last = points[0], points[-1]
    out = {"n_first": first["n_train"], "mae_first": first["test_mae"], "n_last": last["n_train"],
           "mae_last": last["test_mae"], "n_previous": None, "difference": None, "difference_ci": None,
           "per_doubling": None, "reading": "one point"}
    step = last.get("vs_previous")
    if len(points) < 2 or not step or not finite(step.get("mae_difference")):
        return out
    lo, hi = step["difference_ci95"]
    out.update(n_previous=step["n_train"], difference=step["mae_difference"], difference_ci=[lo, hi],
               reading="still falling" if hi < 0 else "rising" if lo > 0 else "flat")
    if last["n_train"] > step["n_train"] > 0:
        out["per_doubling"] = step["mae_difference"] / math.log2(last["n_train"] / step["n_train"])
    return out


def learning_curve_readings(ev: dict) -> list[dict]:
    """`curve_reading` of every learning curve, with its variant and probe and whether it is the model's probe
    chosen on validation."""
    picks = {(v, p) for v, p, _ in chosen(ev)}
    return [{"variant": v, "probe": p, "chosen": (v, p) in picks, **curve_reading(points)}
            for v, p, points in learning_curves(ev)]


def learning_curve_answer(ev: dict) -> dict | None:
    """The reading for the best model + probe chosen on validation when it has a curve, else for the first
    chosen probe that has one, else for the first curve; None without learning curves."""
    readings = learning_curve_readings(ev)
    b = ev.get("best") or {}
    for r in readings:
        if (r["variant"], r["probe"]) == (b.get("model"), b.get("probe")):
            return r
    return next((r for r in readings if r["chosen"]), readings[0] if readings else None)


def curve_sentence(r: dict) -> str:
    """A `learning_curve_readings` entry in plain words."""
    head = (f"{r['variant']} + {r['probe']}: test MAE {r['mae_first']:.3f} with {r['n_first']:,} training articles, "
            f"{r['mae_last']:.3f} with {r['n_last']:,}")
    if r["reading"] == "one point":
        return head + "; a single point, nothing to read."
    d, (lo, hi) = r["difference"], r["difference_ci"]
    step = (f"; the last step ({r['n_previous']:,} to {r['n_last']:,} articles) changed it by {d:+.3f} "
            f"(95% CI {lo:+.3f} to {hi:+.3f}")
    step += f", {r['per_doubling']:+.3f} per doubling)" if r["per_doubling"] is not None else ")"
    meaning = {"still falling": "still falling — more labels would probably help",
               "flat": "flat — the CI includes zero, so more labels of the same kind are unlikely to help much",
               "rising": "rising — the error grew at the last step, so more labels did not help there"}
    return f"{head}{step}. Reading: {meaning[r['reading']]}."
