"""Every figure of the study: one function a chart, plain data in, the PNG's path out.

All figures share one look (`STYLE`, the fine-tuned baseline as a red dashed line), render
with the Agg backend (no display needed) and are written atomically at `DPI` (temp file +
rename), so a crash never leaves a half-written PNG. Colours are keyed by name, so a probe or a
model has the same colour in every figure and every report (`probe_color`, `model_colors`);
legends sit outside the axes, and bar value labels keep clear of the reference lines.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from study.artifacts import atomic_path  # noqa: E402

DPI = 150
STYLE = {"figure.facecolor": "white", "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True,
         "axes.spines.top": False, "axes.spines.right": False, "font.size": 9, "axes.titlesize": 10,
         "axes.titleweight": "bold", "figure.titlesize": 12, "figure.titleweight": "bold",
         "legend.fontsize": 8, "legend.frameon": False}
BASELINE = {"color": "crimson", "linestyle": "--", "linewidth": 1.5}
MEAN_PREDICTOR = {"color": "dimgray", "linestyle": ":", "linewidth": 1.5}
ERROR_LABEL = "error (predicted − true)"


def palette(n: int) -> list:
    """`n` distinct colours, the same order in every figure (for what has no colour of its own: dimensions)."""
    return [plt.get_cmap("tab10")(i % 10) for i in range(n)]


# -- colours keyed by name: a probe, or a model, is drawn in the same colour in every figure -------------
PROBE_COLORS = {"ridge": "#1f77b4", "mlp": "#ff7f0e", "lightgbm": "#2ca02c", "logistic": "#17becf"}
PROBE_MARKERS = {"ridge": "o", "mlp": "s", "lightgbm": "^", "logistic": "D"}
# none of the probes' colours, no red (the baseline's) and no grey (the train-mean predictor's)
MODEL_PALETTE = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#7b4173",
                 "#6b6ecf", "#bd9e39", "#a55194", "#8ca252")


@functools.cache
def study_models() -> tuple[str, ...]:
    """The models of the shipped config.yaml (`embedding_models`), in its order: they get the first colours."""
    from study.config import DEFAULT_CONFIG, load_yaml
    from study.errors import StudyError

    try:
        return tuple((load_yaml(DEFAULT_CONFIG) or {}).get("embedding_models") or ())
    except (StudyError, OSError, AttributeError):
        return ()


def _hashed(name: str, choices) -> str:
    """A colour of `choices` picked by a hash of `name`: stable across runs and machines (not Python's hash)."""
    return choices[int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % len(choices)]


def probe_color(name: str) -> str:
    """The colour of a probe: fixed for the study's probes, hashed from the name for any other."""
    return PROBE_COLORS.get(name) or _hashed(name, MODEL_PALETTE)


def model_color(name: str) -> str:
    """A model's (variant's) own colour: its position in config.yaml's `embedding_models`, else a hash of its name
    into the colours those models leave free (a truncation or chunked variant, a pair, a model of another config)."""
    known = study_models()
    if name in known:
        return MODEL_PALETTE[known.index(name) % len(MODEL_PALETTE)]
    return _hashed(name, MODEL_PALETTE[len(known):] or MODEL_PALETTE)


def model_colors(names) -> dict[str, str]:
    """{name: colour} for the models of one figure: each its own `model_color`, except that a name whose hashed
    colour an earlier one of the same figure took gets the next free colour (config models never collide)."""
    out: dict[str, str] = {}
    for name in sorted(dict.fromkeys(names), key=lambda n: (n not in study_models(), n)):
        color = model_color(name)
        if color in out.values():
            start = MODEL_PALETTE.index(color)
            free = [c for c in MODEL_PALETTE[start:] + MODEL_PALETTE[:start] if c not in out.values()]
            color = free[0] if free else color
        out[name] = color
    return {n: out[n] for n in dict.fromkeys(names)}


def split_label(label: str) -> tuple[str, str | None]:
    """'<model> + <probe>' -> (model, probe); any other label -> (label, None). A pair variant 'a+b' has no spaces."""
    model, _, probe = label.rpartition(" + ")
    return (model, probe) if model and probe in PROBE_COLORS else (label, None)


def label_colors(labels) -> dict[str, str]:
    """{'<model> + <probe>': the model's colour} (lines of one model share it; the probe is told by the marker)."""
    by_model = model_colors([split_label(lab)[0] for lab in labels])
    return {lab: by_model[split_label(lab)[0]] for lab in labels}


def _legend_below(fig, handles=None, ncols: int = 4, **kwargs):
    """The figure's legend below its axes, where it cannot hide data (needs a constrained layout)."""
    labels = None if handles is None else [h.get_label() for h in handles]
    if handles is None:   # the labelled artists of every panel, each label once
        handles, labels = [], []
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(len(handles), ncols)), **kwargs)


def _styled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


MAX_LABEL_CHARS = 100   # a text of a figure longer than this is cut (a 5,000-character name made gigapixel PNGs)


def _bounded_labels(fig) -> None:
    """Cut every text of `fig` (titles, tick labels, legends, annotations) to MAX_LABEL_CHARS, on one line each, so
    no name can stretch the figure that `bbox_inches="tight"` fits around them."""
    for text in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "set_text")):
        value = text.get_text()
        if _cut(value) != value:
            text.set_text(_cut(value))
    for ax in fig.axes:   # names on a category axis are drawn from its formatter at save time
        for axis in (ax.xaxis, ax.yaxis):
            fmt = axis.get_major_formatter()
            if isinstance(fmt, (matplotlib.category.StrCategoryFormatter, ticker.FixedFormatter)):
                axis.set_major_formatter(ticker.FuncFormatter(lambda x, pos, f=fmt: _cut(f(x, pos))))


def _cut(value: str) -> str:
    lines = str(value).splitlines() or [""]
    if len(lines) <= 6 and all(len(line) <= MAX_LABEL_CHARS for line in lines):
        return value
    return "\n".join(line[:MAX_LABEL_CHARS - 1] + "…" if len(line) > MAX_LABEL_CHARS else line for line in lines[:6])


def _save(fig, out) -> Path:
    out = Path(out)
    try:
        _bounded_labels(fig)
        with atomic_path(out, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return out


def _grid(n: int, panel=(4.2, 3.4), ncols: int = 3, **kwargs):
    """A figure with `n` panels (up to `ncols` a row); unused cells are hidden."""
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(panel[0] * ncols, 7.5), panel[1] * nrows + 0.6),
                             layout="constrained", squeeze=False, **kwargs)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _grouped_bars(ax, categories: list[str], series: dict[str, list[float]], colors: dict[str, str],
                  yerr: dict | None = None, value_fmt: str | None = None) -> list[dict]:
    """One group of bars a category, one bar a series in its colour (`colors`, by name); NaN draws no bar.
    With `value_fmt` each bar's value is written inside its base; returns those labels for `_clear_of_lines`:
    [{"text", "x" (the bar's centre), "top" (its value), "whisker" (the top of its CI bar)}]."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(categories))
    labels = []
    for j, (name, values) in enumerate(series.items()):
        offset = (j - (len(series) - 1) / 2) * width
        values = np.asarray(values, dtype=float)
        err = None if yerr is None else np.asarray(yerr[name], dtype=float)
        ax.bar(x + offset, values, width * 0.92, label=name, color=colors[name], yerr=err, capsize=3,
               error_kw={"elinewidth": 1, "ecolor": "black"})
        if value_fmt:
            for i, v in enumerate(values):
                if np.isfinite(v):
                    text = ax.text(x[i] + offset, 0, value_fmt.format(v), ha="center", va="bottom", fontsize=7,
                                   rotation=90 if len(series) * len(categories) > 12 else 0, color="white", zorder=4)
                    whisker = v + (err[1][i] if err is not None and np.isfinite(err[1][i]) else 0.0)
                    labels.append({"text": text, "x": x[i] + offset, "top": v, "whisker": whisker})
    _xticks(ax, x, categories)
    ax.grid(axis="x", visible=False)
    return labels


LABEL_PAD_PT = 2.5   # between a value label and the bar's base, a reference line or the CI bar


def _clear_of_lines(ax, labels: list[dict], lines_y: list) -> None:
    """Move each bar's value label (from `_grouped_bars`) to the lowest place inside its bar that no reference line
    (the baseline, the train-mean predictor) crosses; where none is left inside the bar, above its CI bar (in black),
    again clear of the lines. Call once the axes' limits are final."""
    if not labels:
        return
    fig = ax.figure
    fig.canvas.draw()   # the layout, so that text extents and the data transform are final
    renderer = fig.canvas.get_renderer()
    y_of = ax.transData.inverted()
    pad = y_of.transform((0, LABEL_PAD_PT * fig.dpi / 72))[1] - y_of.transform((0, 0))[1]
    ys = sorted(float(y) for y in lines_y if y is not None and np.isfinite(y))

    def lowest_free(start: float, height: float) -> float:
        for y in ys:
            if start - pad <= y <= start + height + pad:   # the line would cross the label: start above it
                start = y + pad
        return start

    for label in labels:
        text = label["text"]
        box = text.get_window_extent(renderer)
        height = y_of.transform((0, box.height))[1] - y_of.transform((0, 0))[1]
        start = lowest_free(pad, height)
        if start + height + pad > label["top"]:   # no room left inside the bar
            start = lowest_free(max(label["top"], label["whisker"]) + pad, height)
            text.set_color("black")
        text.set_y(start)


def _xticks(ax, positions, labels: list[str]) -> None:
    """Tick labels, slanted when some are long."""
    slant = max(map(len, labels), default=0) > 12
    ax.set_xticks(positions, labels, rotation=20 if slant else 0, ha="right" if slant else "center")


def _baseline_line(ax, baseline_mae: float | None, source: str = "") -> None:
    if baseline_mae is not None:
        ax.axhline(baseline_mae, **BASELINE, label=f"fine-tuned baseline MAE {baseline_mae:.2f}"
                   + (f" ({source})" if source else ""))


# -- phase 3: comparison -------------------------------------------------------------
@_styled
def mae_bars(rows: list[dict], baseline_mae: float | None, out, *, baseline_source: str = "",
             mean_mae: float | None = None, title: str = "Test MAE by model and probe (95% bootstrap CI)") -> Path:
    """Grouped bars of test MAE, one group a model, one colour a probe, with CI error bars.

    rows: [{"model", "probe", "mae", "ci95": [low, high]}]; the baseline is a dashed line,
    `mean_mae` (the train-mean predictor) a dotted one.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    probes = list(dict.fromkeys(r["probe"] for r in rows))
    cell = {(r["model"], r["probe"]): r for r in rows}
    nan = float("nan")

    def below_above(r):  # distances from the bar's top to its CI ends
        return [r["mae"] - r["ci95"][0], r["ci95"][1] - r["mae"]] if r else [nan, nan]

    series = {p: [cell[m, p]["mae"] if (m, p) in cell else nan for m in models] for p in probes}
    yerr = {p: np.array([below_above(cell.get((m, p))) for m in models]).T for p in probes}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(rows) + 3), 4.8), layout="constrained")
    labels = _grouped_bars(ax, models, series, {p: probe_color(p) for p in probes}, yerr, value_fmt="{:.3f}")
    _baseline_line(ax, baseline_mae, baseline_source)
    if mean_mae is not None:
        ax.axhline(mean_mae, **MEAN_PREDICTOR, label=f"train-mean predictor MAE {mean_mae:.2f}")
    top = max([r["ci95"][1] for r in rows] + [baseline_mae or 0, mean_mae or 0])
    ax.set_ylim(0, top * 1.12)
    ax.set(title=title, xlabel="embedding model", ylabel="test MAE (lower is better)")
    _legend_below(fig, ncols=min(len(probes) + 2, 5))
    _clear_of_lines(ax, labels, [baseline_mae, mean_mae])
    return _save(fig, out)


@_styled
def f1_bars(rows: list[dict], baseline_f1: float | None, out, *, always_yes_f1: float | None = None,
            title: str = "Test F1 by model and probe (95% bootstrap CI)") -> Path:
    """Yes/no datasets: grouped bars of test F1 at each probe's validation threshold, with CI error bars.

    rows: [{"model", "probe", "f1", "ci95": [low, high]}]; the fine-tuned classifier's F1 is a dashed
    line, saying yes to every article a dotted one.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    probes = list(dict.fromkeys(r["probe"] for r in rows))
    cell = {(r["model"], r["probe"]): r for r in rows}
    nan = float("nan")
    series = {p: [cell[m, p]["f1"] if (m, p) in cell else nan for m in models] for p in probes}
    yerr = {p: np.array([[r["f1"] - r["ci95"][0], r["ci95"][1] - r["f1"]] if r else [nan, nan]
                         for r in (cell.get((m, p)) for m in models)]).T for p in probes}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(rows) + 3), 4.8), layout="constrained")
    labels = _grouped_bars(ax, models, series, {p: probe_color(p) for p in probes}, yerr, value_fmt="{:.3f}")
    if baseline_f1 is not None:
        ax.axhline(baseline_f1, **BASELINE, label=f"fine-tuned classifier F1 {baseline_f1:.3f}")
    if always_yes_f1 is not None:
        ax.axhline(always_yes_f1, **MEAN_PREDICTOR, label=f"saying yes to every article: F1 {always_yes_f1:.2f}")
    ax.set_ylim(0, 1.08)
    ax.set(title=title, xlabel="embedding model", ylabel="test F1 (higher is better)")
    _legend_below(fig, ncols=min(len(probes) + 2, 5))
    _clear_of_lines(ax, labels, [baseline_f1, always_yes_f1])
    return _save(fig, out)


@_styled
def dimension_heatmap(matrix, row_labels: list[str], col_labels: list[str], out, *,
                      title: str = "Test MAE per dimension", xlabel: str = "dimension",
                      ylabel: str = "model / probe", cbar_label: str = "MAE (lower is better)",
                      value_fmt: str = "{:.2f}") -> Path:
    """Heatmap of `matrix` (rows x columns, NaN for missing) with each value written in its cell."""
    M = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(col_labels) + 3.5), max(2.8, 0.42 * len(row_labels) + 2.2)),
                           layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(M), cmap="YlOrRd", aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(M):
        ax.text(j, i, "–" if np.isnan(v) else value_fmt.format(v), ha="center", va="center", fontsize=8,
                color="white" if np.isfinite(v) and im.norm(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label=cbar_label, shrink=0.9)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, out)


@_styled
def quality_vs_speed(points: list[dict], baseline_mae: float | None, out, *,
                     title: str = "Quality against speed") -> Path:
    """Scatter of test MAE (with its 95% CI where given) against throughput (log x);
    points: [{"label", "mae", "articles_per_s", "ci"?}]."""
    fig, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    by_label = label_colors([p["label"] for p in points])
    colors = [by_label[p["label"]] for p in points]
    below = {id(p): k % 2 == 1 for k, p in enumerate(sorted(points, key=lambda p: p["articles_per_s"]))}
    for p, c in zip(points, colors):   # neighbours by speed take turns labelling above and below their point
        if p.get("ci"):
            lo, hi = p["ci"]
            ax.errorbar(p["articles_per_s"], p["mae"], yerr=[[p["mae"] - lo], [hi - p["mae"]]], color=c, capsize=3,
                        zorder=2)
        ax.scatter(p["articles_per_s"], p["mae"], s=60, color=c, edgecolor="black", zorder=3)
        ax.annotate(p["label"], (p["articles_per_s"], p["mae"]), xytext=(6, -12 if below[id(p)] else 6),
                    textcoords="offset points", fontsize=8)
    _baseline_line(ax, baseline_mae)
    speeds = [p["articles_per_s"] for p in points]
    if speeds:
        ax.set_xlim(min(speeds) / 2, max(speeds) * 3)
    _log_x(ax)
    ax.set(title=title, xlabel="throughput (articles/s, log scale; right is faster)",
           ylabel="test MAE with 95% CI (lower is better)")
    _legend_below(fig)
    return _save(fig, out)


def _log_x(ax) -> None:
    """A log x axis labelled 1, 2, 5, 10, 20, 50 ... (matplotlib's minor labels such as 3x10^1 overlap)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


# -- phase 5: error analysis ---------------------------------------------------------
@_styled
def error_histograms(errors: dict[str, np.ndarray], out, *, title: str = "Distribution of errors") -> Path:
    """One panel a model: histogram of signed errors (pooled over dimensions), bias marked."""
    flat = {m: np.asarray(e, dtype=float).ravel() for m, e in errors.items()}
    lim = max(max(np.abs(e).max() for e in flat.values()), 1e-9)
    bins = np.linspace(-lim, lim, 41)
    fig, axes = _grid(len(flat))
    colors = model_colors(flat)
    for ax, (model, e) in zip(axes, flat.items()):
        ax.hist(e, bins=bins, color=colors[model], alpha=0.85)
        ax.axvline(0, color="black", linewidth=1, label="no error")
        ax.axvline(e.mean(), color="black", linestyle="--", linewidth=1, label="mean error (bias)")
        ax.set(title=f"{model}\nMAE {np.abs(e).mean():.3f}, bias {e.mean():+.2f}", xlabel=ERROR_LABEL,
               ylabel="article × dimension pairs")
    _legend_below(fig)
    fig.suptitle(title)
    return _save(fig, out)


@_styled
def error_violins(values: dict[str, np.ndarray], out, *, ylabel: str = "per-article MAE",
                  title: str = "Per-article error by model") -> Path:
    """One violin a model (median line, mean dot)."""
    models = list(values)
    data = [np.asarray(values[m], dtype=float).ravel() for m in models]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(models) + 2), 4.5), layout="constrained")
    parts = ax.violinplot(data, showmedians=True, showextrema=True)
    colors = model_colors(models)
    for body, model in zip(parts["bodies"], models):
        body.set(facecolor=colors[model], edgecolor="black", alpha=0.7)
    for key in ("cmedians", "cmins", "cmaxes", "cbars"):
        parts[key].set(color="black", linewidth=1)
    parts["cmedians"].set(label="median", linewidth=2)
    ax.scatter(range(1, len(models) + 1), [d.mean() for d in data], color="white", edgecolor="black", zorder=3,
               label="mean")
    _xticks(ax, range(1, len(models) + 1), models)
    ax.set(title=title, xlabel="embedding model", ylabel=ylabel)
    _legend_below(fig)
    return _save(fig, out)


@_styled
def pred_vs_true(pairs: dict[str, tuple[np.ndarray, np.ndarray]], dimension_names: list[str], out, *,
                 score_range=(0.0, 10.0), title: str = "Predicted against true scores") -> Path:
    """One panel a model: (true, predicted) per article and dimension, the diagonal, and the
    mean prediction per unit of true score (flatter than the diagonal = pull toward the mean)."""
    low, high = score_range
    fig, axes = _grid(len(pairs), panel=(4.0, 4.0), sharey=True)
    colors = palette(len(dimension_names))
    edges = np.arange(low, high + 1)
    for ax, (model, (Y, P)) in zip(axes, pairs.items()):
        Y, P = np.asarray(Y, dtype=float), np.asarray(P, dtype=float)
        for d, name in enumerate(dimension_names):
            ax.scatter(Y[:, d], P[:, d], s=6, alpha=0.35, color=colors[d], rasterized=True)
        idx = np.clip(np.digitize(Y.ravel(), edges) - 1, 0, len(edges) - 2)
        centers = [(edges[b] + edges[b + 1]) / 2 for b in range(len(edges) - 1) if (idx == b).any()]
        means = [P.ravel()[idx == b].mean() for b in range(len(edges) - 1) if (idx == b).any()]
        ax.plot(centers, means, color="black", marker="o", markersize=3, linewidth=1.5, label="mean prediction")
        ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="perfect (y = x)")
        ax.set(xlim=(low, high), ylim=(low, high), aspect="equal", title=model, xlabel="true score",
               ylabel="predicted score")
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=name) for name, c in zip(dimension_names, colors)]
    handles += axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3 if len(pairs) == 1 else 4))
    fig.suptitle(title)
    return _save(fig, out)


@_styled
def error_vs_tokens(series: dict[str, dict], out, *, title: str = "Error against article length") -> Path:
    """One panel a model: per-article MAE against token count (log x), with the mean per
    length bin and the model's truncation point (`max_tokens`) as a vertical line.

    series: {model: {"token_counts", "mae" (per article), "max_tokens"}}.
    """
    fig, axes = _grid(len(series), sharey=True)
    colors = model_colors(series)
    for ax, (model, s) in zip(axes, series.items()):
        c = colors[model]
        tokens = np.maximum(np.asarray(s["token_counts"], dtype=float), 1)
        mae = np.asarray(s["mae"], dtype=float)
        max_tokens = int(s["max_tokens"])
        ax.scatter(tokens, mae, s=8, alpha=0.4, color=c, rasterized=True, label="article")
        if tokens.max() > tokens.min():
            edges = np.geomspace(tokens.min(), tokens.max() * 1.0001, 9)
            idx = np.clip(np.digitize(tokens, edges) - 1, 0, len(edges) - 2)
            keep = [b for b in range(len(edges) - 1) if (idx == b).sum() >= 3]
            ax.plot([np.sqrt(edges[b] * edges[b + 1]) for b in keep], [mae[idx == b].mean() for b in keep],
                    color="black", marker="o", markersize=3, label="mean per length bin")
        ax.axvline(max_tokens, **BASELINE, label="truncation point (the model's max tokens)")
        ax.axvspan(max_tokens, max(tokens.max(), max_tokens) * 1.5, color="crimson", alpha=0.06)
        ax.set_xlim(tokens.min() / 1.5, max(tokens.max(), max_tokens) * 1.5)
        _log_x(ax)
        truncated = tokens > max_tokens
        ax.set(title=f"{model}\n{truncated.mean():.0%} of articles truncated at {max_tokens} tokens",
               xlabel="tokens before truncation (log)", ylabel="per-article MAE")
    _legend_below(fig)   # below the panels: a legend inside would hide the worst articles (top of the panel)
    fig.suptitle(title)
    return _save(fig, out)


@_styled
def error_by_language(per_language: dict[str, dict[str, dict]], out, *,
                      title: str = "Test MAE by language") -> Path:
    """Grouped bars: one group a language (its article count in the label), one colour a model.

    per_language: {model: {language: {"n", "mae"}}}; languages keep the first model's order.
    """
    languages = list(dict.fromkeys(lang for groups in per_language.values() for lang in groups))
    counts = {lang: next(g[lang]["n"] for g in per_language.values() if lang in g) for lang in languages}
    series = {m: [g[lang]["mae"] if lang in g else float("nan") for lang in languages] for m, g in per_language.items()}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(languages) * len(series) + 3), 4.5), layout="constrained")
    _grouped_bars(ax, [f"{lang}\nn={counts[lang]}" for lang in languages], series, model_colors(series),
                  value_fmt="{:.2f}")
    ax.set(title=title, xlabel="language (articles in the test split)", ylabel="MAE (lower is better)")
    _legend_below(fig)
    return _save(fig, out)


@_styled
def bias_by_score_bin(bins: dict[str, list[dict]], out, *,
                      title: str = "Bias by true score: do probes pull extremes toward the mean?") -> Path:
    """Grouped bars of mean (predicted − true) per bin of the true score, one colour a model.

    bins: {model: [{"low", "high", "n", "bias"}]}; positive bars = over-predicted.
    """
    counts = {(b["low"], b["high"]): b["n"] for rows in bins.values() for b in rows}
    keys = sorted(counts)
    labels = [f"{lo:g}–{hi:g}\nn={counts[lo, hi]}" for lo, hi in keys]
    series = {m: [next((b["bias"] for b in rows if (b["low"], b["high"]) == k), float("nan")) for k in keys]
              for m, rows in bins.items()}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(keys) * len(series) + 3), 4.5), layout="constrained")
    _grouped_bars(ax, labels, series, model_colors(series))
    ax.axhline(0, color="black", linewidth=1)
    ax.set(title=title, xlabel="true score bin (article × dimension pairs)",
           ylabel="bias: mean (predicted − true)\n> 0 over-predicted, < 0 under-predicted")
    _legend_below(fig)
    return _save(fig, out)


@_styled
def screening_curve(curves: dict[str, dict], targets: list[float], out, *,
                    title: str = "Screening: articles that skip the fine-tuned model against medium+ recall") -> Path:
    """One step line a model: share of test articles below the threshold (they skip the fine-tuned model)
    against the share of medium+ articles kept, at every distinct threshold; dotted verticals at the targets.

    curves: {label: {"recall": [...], "skip_share": [...]}}.
    """
    fig, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    colors = label_colors(curves)
    for label, c in curves.items():
        color = colors[label]
        recall, skip = np.asarray(c["recall"], dtype=float), np.asarray(c["skip_share"], dtype=float)
        ax.plot(recall, skip, color=color, linewidth=1.5, drawstyle="steps-pre", label=label)   # one step an article
    for i, t in enumerate(targets):
        ax.axvline(t, color="gray", linestyle=":", linewidth=1,
                   label="recall targets " + ", ".join(f"{x:.0%}" for x in targets) if i == 0 else None)
    ax.set_xlim(max(0.0, min(targets) - 0.25), 1.005)   # the region where a screening threshold can sit
    ax.set_ylim(0, 1.02)
    ax.set(title=title, xlabel="recall of medium+ articles (share kept for the fine-tuned model)",
           ylabel="share of all articles that skip the fine-tuned model")
    _legend_below(fig, ncols=2)
    return _save(fig, out)


@_styled
def learning_curve(curves: dict[str, list[dict]], baseline_mae: float | None, out, *, baseline_source: str = "",
                   title: str = "Learning curve: test MAE against training articles (95% bootstrap CI)") -> Path:
    """One line a model + probe: test MAE with its CI bars against the number of training articles (log x);
    the fine-tuned baseline as a horizontal line when known.

    curves: {label: [{"n_train", "test_mae", "mae_ci95": [low, high]}, ...]}.
    """
    fig, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    colors = label_colors(curves)
    for j, (label, points) in enumerate(curves.items()):
        color, probe = colors[label], split_label(label)[1]
        dodge = 1 + 0.015 * (j - (len(curves) - 1) / 2)   # lines side by side, so their CI bars do not hide each other
        n = np.array([p["n_train"] for p in points], dtype=float) * dodge
        mae = np.array([p["test_mae"] for p in points], dtype=float)
        ci = np.array([p["mae_ci95"] for p in points], dtype=float).reshape(-1, 2)
        ax.errorbar(n, mae, yerr=np.clip(np.vstack([mae - ci[:, 0], ci[:, 1] - mae]), 0, None), color=color,
                    marker=PROBE_MARKERS.get(probe, "o"), markersize=4, linewidth=1.5, capsize=3, elinewidth=1, label=label)
    _baseline_line(ax, baseline_mae, baseline_source)
    ax.set_xscale("log")
    ticks = sorted({p["n_train"] for points in curves.values() for p in points})
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set(title=title, xlabel="training articles (log scale)", ylabel="test MAE (lower is better)")
    _legend_below(fig, ncols=2)
    return _save(fig, out)


@_styled
def dataset_bars(mae: dict[str, dict[str, float]], baselines: dict[str, float | None], out, *,
                 title: str = "Test MAE per dataset (each model's probe chosen on validation)") -> Path:
    """Grouped bars: one group a dataset, one colour a model; each dataset's baseline as a short red line.

    mae: {model: {dataset: test MAE}}.
    """
    datasets = list(baselines)
    series = {m: [per.get(d, float("nan")) for d in datasets] for m, per in mae.items()}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(datasets) * len(series) + 3), 4.8), layout="constrained")
    labels = _grouped_bars(ax, datasets, series, model_colors(series), value_fmt="{:.3f}")
    known = [i for i, d in enumerate(datasets) if baselines[d] is not None]
    for i in known:
        ax.hlines(baselines[datasets[i]], i - 0.45, i + 0.45, label="fine-tuned baseline" if i == known[0] else None,
                  **BASELINE)
    ax.set(title=title, xlabel="dataset", ylabel="test MAE (lower is better)")
    _legend_below(fig)
    for i in known:   # each dataset's labels keep clear of its own baseline
        _clear_of_lines(ax, [lab for lab in labels if abs(lab["x"] - i) < 0.5], [baselines[datasets[i]]])
    return _save(fig, out)
