"""The study's findings, each computed once by a plain function over the typed results.

The report's page 1 (study/decision.py), its sections (study/report.py), the comparison charts
and the cross-dataset summary call these, so a number cannot differ between two places. Inputs
are the typed records of study/schemas.py (`ev`: the evaluation, `bench`: the benchmark);
outputs are small dataclass-free dicts and lists of what a table row shows. Every verdict word
is the one evaluate.py recorded by the comparison rule (study/verdicts.py); nothing here reads
overlapping intervals or the sign of a point estimate.
"""
from __future__ import annotations

from study.metrics import band_limits, finite, summed_rate
from study.results import layer_groups, sweep_groups
from study.schemas import BenchmarkRecord, ScoreEvaluation
from study.tasks import ARM
from study.verdicts import CURVE_BOOTSTRAP_SEEDS, band_phrase, bands_spanned, too_few_to_judge, unpaired_reading


def band_rule(base: float | None, margins: dict[str, float]) -> str | None:
    """The bands in words, with this dataset's limits (baseline MAE, margins); None without a baseline."""
    if not base or not {"closes_gap", "partial"} <= set(margins):
        return None
    closes, partial = band_limits(base, margins)
    return (f"closes the gap at or below {closes:.2f} MAE (baseline {base:.2f} + {margins['closes_gap']:g}), "
            f"partial at or below {partial:.2f} (+ {margins['partial']:g}), no improvement above")


def bands_of(ev: ScoreEvaluation, ci) -> str | None:
    """The band(s) a test MAE's CI spans against the baseline ('partial, possibly closes the gap'); None without
    a baseline."""
    if not ev.baseline_mae or not {"closes_gap", "partial"} <= set(ev.success_bands) or not ci:
        return None
    return band_phrase(bands_spanned(ci, ev.baseline_mae, ev.success_bands))


def margin(ev) -> float:
    """The equivalence margin the evaluation ran with (MAE for scores, F1 for yes/no labels), from its recorded
    config (a `Config`: where a record lacks a setting, Config's default, the one place each default is written)."""
    return ev.config.equivalence_margin if ev.task == "regression" else ev.config.equivalence_margin_f1


def min_articles(ev) -> int:
    return ev.config.min_group_articles


def too_few(ev, n: int, positives: int | None = None) -> bool:
    return too_few_to_judge(n, positives, min_articles=min_articles(ev), min_positives=ev.config.min_group_positives)


def paired_figures(ev, d) -> tuple:
    """(difference, its 95% CI) of a paired record: MAE differences for scores (`PairedDifference`), F1 for
    yes/no labels (`Reading`)."""
    return (d.mae_difference, d.difference_ci95) if ev.task == "regression" else (d.difference, d.ci95)


def seed_spread(ev) -> tuple[int, float | None]:
    """(seeds of the stochastic probes, the largest SD of one seed's test score across them; None with one seed),
    from the probes' `seeds` records."""
    records = [m.seeds for _, k, m in ev.entries() if k in ("mlp", "lightgbm") and m.seeds is not None]
    n = max((r.n for r in records), default=1)
    sds = [r.test_spread.sd for r in records if r.n > 1 and r.test_spread.sd is not None]
    return n, max(sds) if sds else None


def ranked(ev):
    """(variant, probe, metrics) of every probe, best test result first (lowest MAE / highest F1)."""
    if ev.task == "classification":
        return sorted(ev.entries(), key=lambda e: -(e[2].f1 if e[2].f1 is not None else -1))
    return sorted(ev.entries(), key=lambda e: e[2].overall_mae)


def vs_baseline(ev: ScoreEvaluation, m) -> dict | None:
    """A probe against the fine-tuned model by the comparison rule: the paired difference on the articles both
    scored when its predictions were given, else the test MAE's CI against the single baseline MAE (unpaired).
    {difference, ci95, verdict, paired}; None without a baseline."""
    if m.vs_baseline is not None:
        d = m.vs_baseline
        return {"difference": d.mae_difference, "ci95": d.difference_ci95, "verdict": d.verdict, "paired": True}
    if not ev.baseline_mae:
        return None
    r = unpaired_reading(m.overall_mae, m.mae_ci95, ev.baseline_mae, margin(ev), n=ev.n_test, baseline_n=ev.baseline_n)
    return {"difference": r["difference"], "ci95": r["ci95"], "verdict": r["verdict"], "paired": False}


# -- languages: controls, per language, transfer, model against model -------------------------------
def controls(ev) -> dict[str, str]:
    """{variant: why it is a control} of the models that do not read every test language (study/languages.py)."""
    return {v: e.control_reason or "does not read every test language" for v, e in ev.models.items() if e.control}


def undeclared(ev) -> list[str]:
    """The variants whose languages nobody declared (config `languages`), so nothing says they read them."""
    return [v for v, e in ev.models.items() if e.languages is None]


def study_models(ev) -> tuple[list[str], list[str]]:
    """(the study's models (config default_models) that were evaluated here, those that were not)."""
    defaults = ev.config.default_models
    ran = {p for e in ev.models.values() for p in e.model.split("+")}
    return [m for m in defaults if m in ran], [m for m in defaults if m not in ran]


def language_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per model (its probe chosen on validation) and test language: {variant, probe, control, language, n, mae,
    ci, too_few, vs_reference, vs_best, vs_baseline}; the best model's rows first."""
    rows = []
    for v, p, m in sorted(ev.chosen_entries(), key=lambda e: (e[0] != ev.best.model, ev.models[e[0]].control)):
        for lang, r in (m.by_language or {}).items():
            rows.append({"variant": v, "probe": p, "control": ev.models[v].control, "language": lang, "n": r.n,
                         "mae": r.mae, "ci": r.mae_ci95, "too_few": r.too_few, "vs_reference": r.vs_reference,
                         "vs_best": r.vs_best, "vs_baseline": r.vs_baseline})
    return rows


def transfer_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per model's probe chosen on validation, trained on some languages only (train_probes.py --train-languages),
    and test language, the best model first: {variant,
    probe, control, trained_on, n_train, language, n, mae, mae_all, too_few, vs_all, vs_reference}."""
    rows = []
    for v, p, m in sorted(ev.chosen_entries(), key=lambda e: (e[0] != ev.best.model, ev.models[e[0]].control)):
        for t in m.transfer or []:
            for lang, r in t.per_language.items():
                rows.append({"variant": v, "probe": p, "control": ev.models[v].control, "trained_on": t.train_languages,
                             "n_train": t.n_train, "language": lang, "n": r.n, "mae": r.mae, "mae_all": r.mae_all,
                             "too_few": r.too_few, "vs_all": r.vs_all, "vs_reference": r.vs_reference})
    return rows


# -- truncation, chunking, sweeps, pairs ---------------------------------------------------------
def truncation_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per model, with its chosen probe: how many test articles are cut and their MAE against whole ones; a group
    below the minimum size is flagged `too_few`."""
    rows = []
    for v, p, m in ev.chosen_entries():
        e, t = ev.models[v], m.truncation
        cut, whole = t.truncated, t.not_truncated
        diff = cut.mae - whole.mae if finite(cut.mae) and finite(whole.mae) else None
        rows.append({"variant": v, "probe": p, "max_tokens": t.max_tokens, "truncated_fraction": e.truncated_fraction,
                     "mean_token_count": e.mean_token_count, "n_cut": cut.n, "mae_cut": cut.mae, "n_whole": whole.n,
                     "mae_whole": whole.mae, "difference": diff,
                     "too_few": too_few(ev, cut.n) or too_few(ev, whole.n)})
    return rows


def sweeps(ev: ScoreEvaluation) -> dict[str, list[dict]]:
    """{model: [{variant, max_tokens, probe, mae, ci, vs_longest}] by max tokens} for each truncation sweep."""
    rows = {v: {"variant": v, "max_tokens": ev.models[v].max_tokens, "probe": p, "mae": m.overall_mae,
                "ci": m.mae_ci95, "vs_longest": m.vs_longest} for v, p, m in ev.chosen_entries()}
    return {k: sorted((rows[v] for v in g), key=lambda r: r["max_tokens"]) for k, g in sweep_groups({n: e.model_dump() for n, e in ev.models.items()}).items()}


def layer_curves(ev: ScoreEvaluation) -> dict[str, dict]:
    """{model at its max tokens: {rows, chosen, last}} for each layer sweep: per layer (ascending) its variant, the
    probe chosen on validation and its validation MAE; `chosen` the row of the lowest validation MAE (the layer is
    chosen on validation), `last` the highest layer's row. Test figures (MAE, CI, the chosen layer's `vs_last` with
    the same probe) are read only for those two, so no layer is picked by its test score."""
    out = {}
    for group, variants in layer_groups({n: e.model_dump() for n, e in ev.models.items()}).items():
        rows = []
        for v in variants:
            e = ev.models[v]
            m = e.probes[e.chosen_probe]
            rows.append({"variant": v, "layer": e.layer, "probe": e.chosen_probe, "val_mae": m.val_mae,
                         "mae": m.overall_mae, "ci": m.mae_ci95, "vs_last": m.vs_last})
        chosen = min(rows, key=lambda r: (r["val_mae"], r["layer"]))
        out[group] = {"rows": rows, "chosen": chosen, "last": rows[-1]}
    return out


def teacher_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per teacher variant (`<variant>+teacher`) and probe: how many teacher-scored articles it was trained on and at
    which weight, its test MAE, and the paired difference against the same probe trained on labels only."""
    return [{"variant": v, "probe": k, "label_only": m.vs_label_only.label_only, "teacher": m.vs_label_only.teacher,
             "mae": m.overall_mae, "ci": m.mae_ci95, "vs": m.vs_label_only}
            for v, e in ev.models.items() for k, m in e.probes.items() if getattr(m, "vs_label_only", None)]


def chunking_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per chunked variant whose truncated twin was evaluated (same probe): the paired differences chunked −
    truncated over all test articles and over those truncation cuts, with their verdicts."""
    rows = []
    for v, p, m in ev.chosen_entries():
        vs, e = m.vs_truncated, ev.models[v]
        if vs is not None:
            rows.append({"variant": v, "truncated": vs.truncated, "probe": p, "chunks": e.chunks,
                         "all": vs.all, "cut": vs.cut})
    return rows


def concatenation_rows(ev: ScoreEvaluation) -> list[dict]:
    """Per side-by-side variant with its chosen probe: test MAE and CI, and against each evaluated part (same
    probe) the paired difference pair − part with its verdict; `beats_all` when every part's verdict is better."""
    rows = []
    for v, p, m in ev.chosen_entries():
        parts = ev.models[v].parts
        if parts:
            vs = m.vs_parts or {}
            against = [(q, vs[q]) for q in parts if q in vs]
            rows.append({"variant": v, "probe": p, "mae": m.overall_mae, "ci": m.mae_ci95, "parts": parts,
                         "against": against, "beats_all": len(against) == len(parts) > 0
                         and all(d.verdict == "better" for _, d in against)})
    return rows


# -- speed ---------------------------------------------------------------------------------------
def throughput(ev, bench: BenchmarkRecord | None, variant: str) -> float | None:
    """A variant's embedding throughput (articles/s) in the benchmark; a side-by-side pair not benchmarked itself
    costs its parts' summed: 1 / sum of 1 / articles per second."""
    if bench is None:
        return None
    own = bench.speed(variant)
    if own is not None and finite(own.articles_per_s):
        return own.articles_per_s
    parts = [bench.speed(q) for q in ev.models[variant].parts or []]
    rates = [p.articles_per_s for p in parts if p is not None]
    return summed_rate(rates) if parts and len(rates) == len(parts) and all(finite(r) and r > 0 for r in rates) else None


def speed_points(ev, bench: BenchmarkRecord | None) -> list[dict]:
    """Each benchmarked model with its chosen probe: {label, variant, probe, mae, ci, articles_per_s}."""
    return [{"label": f"{v} + {p}", "variant": v, "probe": p, "mae": m.overall_mae, "ci": m.mae_ci95,
             "articles_per_s": throughput(ev, bench, v)}
            for v, p, m in ev.chosen_entries() if throughput(ev, bench, v) is not None]


def speed_front(points: list[dict]) -> list[dict]:
    """The points no other point beats on both speed and MAE, fastest first."""
    front = [p for p in points if not any(q["mae"] < p["mae"] and q["articles_per_s"] > p["articles_per_s"]
                                          for q in points)]
    return sorted(front, key=lambda p: -p["articles_per_s"])


# -- probes --------------------------------------------------------------------------------------
def probe_comparisons(ev) -> list[dict]:
    """Every probe against its model's chosen probe: {variant, probe, chosen, validation, difference (this −
    chosen), ci, verdict}; verdict is 'chosen on validation' for the chosen one, else the comparison rule's
    verdict of this probe against it (paired on the same test articles, evaluate.py `vs_chosen`)."""
    rows = []
    for v, c, _ in ev.chosen_entries():
        for p, m in ev.models[v].probes.items():
            d = m.vs_chosen
            if p == c:
                verdict = "chosen on validation"
            elif d is None:
                verdict = "not compared (rerun evaluate.py)"
            else:
                verdict = d.verdict
            diff, ci = paired_figures(ev, d) if d is not None else (None, None)
            rows.append({"variant": v, "probe": p, "chosen": c,
                         "validation": m.val_mae if ev.task == "regression" else m.val_log_loss,
                         "difference": diff, "ci": ci, "verdict": verdict})
    return rows


def probe_verdict_counts(ev) -> dict[str, int]:
    """{verdict: count} of the other probes against each model's chosen probe (paired rule)."""
    counts: dict[str, int] = {}
    for r in probe_comparisons(ev):
        if r["verdict"] != "chosen on validation":
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return counts


# -- screening (study/screening.py computes the numbers in phase 3) ------------------------------
def screening_rows(ev: ScoreEvaluation, bench: BenchmarkRecord | None = None, teacher: bool = False) -> list[dict]:
    """One row per model (its chosen probe) and recall target: the guaranteed threshold chosen on validation
    (one-sided Clopper-Pearson, or why it cannot be certified) and its test results, the plug-in threshold's
    test skip share beside it as a reference, and with a benchmark the two-stage cost per article and speed-up.
    `teacher`: the same read against the fine-tuned model's own medium+ decisions (`screening_vs_teacher`), for the
    models that have it."""
    ft = ev.screening_setup.fine_tuned_ms_per_article
    rows = []
    for v, p, m in ev.chosen_entries():
        e2e = bench.stage1(v, p) if bench else None
        stage1 = e2e.ms_per_article if e2e else None
        if teacher and m.screening_vs_teacher is None:
            continue
        for t in (m.screening_vs_teacher.screening if teacher else m.screening).thresholds:
            g = t.guaranteed
            row = {"variant": v, "probe": p, "target": t.target_recall, "n_relevant_val": t.n_relevant_val,
                   "certified": g.certified and g.threshold is not None, "note": g.note,
                   "articles_needed": g.articles_needed, "threshold": g.threshold, "test": g.test,
                   "plug_in_threshold": t.threshold, "plug_in_test": t.test, "ms_per_article": None, "speedup": None,
                   "seed_spread": g.seed_spread}
            if row["certified"] and g.test is not None and finite(stage1) and ft:
                cost = [stage1 + (1 - g.test.skip_share) * f for f in ft]
                row.update(ms_per_article=cost, speedup=[f / c for f, c in zip(ft, cost)])
            rows.append(row)
    return rows


def screening_curves(ev: ScoreEvaluation) -> dict[str, dict]:
    """{'variant + probe': test curve} of each model's chosen probe, the best (the one page 1 quotes) first."""
    entries = sorted(ev.chosen_entries(), key=lambda e: e[0] != ev.best.model)
    return {f"{v} + {p}": m.screening.curve.model_dump() for v, p, m in entries if m.screening.curve.threshold}


def training_cost(ev: ScoreEvaluation) -> list[dict]:
    """Per model + chosen probe: seconds to embed train + val (from the caches' records) plus the probe's fit,
    against the fine-tuned model's training hours; then each fine-tuned encoder arm (its training run)."""
    hours = ev.screening_setup.fine_tuned_training_hours
    rows = []
    arms = [(v, ARM, e.probes[ARM]) for v, e in ev.models.items() if ARM in e.probes]
    for v, p, m in ev.chosen_entries() + arms:
        cost = ev.models[v].embedding_cost
        parts, devices = [cost.train, cost.val], cost.train.devices if cost.train else None
        embed = sum(x.seconds for x in parts) if all(x is not None and finite(x.seconds) for x in parts) else None
        if p == ARM:   # the fine-tuned encoder embeds nothing beforehand: its training is the whole cost
            embed = 0.0
        total = embed + m.train_seconds if embed is not None and finite(m.train_seconds) else None
        rows.append({"variant": v, "probe": p, "embedding_seconds": embed, "probe_seconds": m.train_seconds,
                     "total_seconds": total, "device": ", ".join(devices) if devices else None,
                     "share_of_fine_tuned": [total / (h * 3600) for h in hours] if total and hours else None})
    return rows


def frozen_base(ev: ScoreEvaluation) -> dict | None:
    """The fine-tuned model's own base, frozen (config role frozen_base), with its chosen probe, if evaluated."""
    hits = [{"variant": v, "probe": p, "mae": m.overall_mae, "ci": m.mae_ci95, "val_mae": m.val_mae}
            for v, p, m in ev.chosen_entries() if ev.models[v].role == "frozen_base"]
    return min(hits, key=lambda h: h["val_mae"]) if hits else None


# -- would more labels help? (learning curve, train_probes.py --train-fractions) -----------------
CURVE_RULE = ("each curve is read over its last doubling of training articles (the full split against the "
              "largest subset at most half its size, whatever fractions were asked): the paired difference of "
              "per-article test MAE, divided by the number of doublings, read against the equivalence margin. "
              "Wholly below −margin: still falling (another doubling would probably lower the error by more "
              "than the margin); wholly inside ±margin: flat; wholly above +margin: rising; else inconclusive")


def learning_curves(ev) -> list[tuple[str, str, list]]:
    """(variant, probe, points by training articles, the full-data probe last) of every probe with a curve."""
    return [(v, p, m.learning_curve) for v, p, m in ev.entries() if getattr(m, "learning_curve", None)]


def learning_curve_readings(ev: ScoreEvaluation) -> list[dict]:
    """Per curve: {variant, probe, chosen, first, last, reading} where reading is the last point's `vs_doubling`
    (study/verdicts.py `curve_reading`, recorded by evaluate.py), None for a curve of one point."""
    picks = {(v, p) for v, p, _ in ev.chosen_entries()}
    return [{"variant": v, "probe": p, "chosen": (v, p) in picks, "first": points[0], "last": points[-1],
             "reading": points[-1].vs_doubling} for v, p, points in learning_curves(ev)]


def curve_sentence(r: dict) -> str:
    """A `learning_curve_readings` entry in plain words."""
    first, last, d = r["first"], r["last"], r["reading"]
    head = (f"{r['variant']} + {r['probe']}: test MAE {first.test_mae:.3f} with {first.n_train:,} training articles, "
            f"{last.test_mae:.3f} with {last.n_train:,}")
    if d is None:
        return head + "; a single point, nothing to read."
    lo, hi = d.per_doubling_ci95
    per = ("an undefined interval" if lo is None or hi is None else f"95% CI {lo:+.3f} to {hi:+.3f}")
    out = (f"{head}; over the last doubling ({d.n_reference:,} to {d.n_last:,} articles) it changed by "
           f"{d.per_doubling:+.3f} per doubling ({per}, margin ±{d.margin:g}). Reading: {d.reading}")
    held = []
    if d.bootstrap_agreement is not None:
        held.append(f"the same under {round(d.bootstrap_agreement * CURVE_BOOTSTRAP_SEEDS)} of "
                    f"{CURVE_BOOTSTRAP_SEEDS} other bootstrap seeds")
    if d.seed_readings:
        same = sum(x == d.reading for x in d.seed_readings)
        held.append(f"{same} of its {len(d.seed_readings)} seeds alone read it so"
                    + ("" if same == len(d.seed_readings) else
                       f" ({', '.join(sorted(set(x for x in d.seed_readings if x != d.reading)))} otherwise)"))
    sds = [f"{p.seed_spread.sd:.3f} at {p.n_train:,}" for p in (r["first"], r["last"])
           if getattr(p, "seed_spread", None) is not None and p.seed_spread.sd is not None]
    if sds:
        held.append("seed SD of the test MAE " + ", ".join(sds))
    return out + (f" ({'; '.join(held)})." if held else ".")
