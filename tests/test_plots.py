"""Figures: fixed colours by name, legends outside the axes, bar value labels clear of the reference lines.

Each test draws a real figure through study/plots.py and inspects its matplotlib artists (not pixels).
"""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from study import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions save, laid out again as they were saved."""
    figures, save = [], plots._save

    def keep(fig, out):
        figures.append(fig)
        return save(fig, out)

    monkeypatch.setattr(plots, "_save", keep)

    def last():
        fig = figures[-1]
        FigureCanvasAgg(fig).draw()   # closing the figure took its canvas
        return fig
    return last


def bar_colors(fig) -> dict[str, set[str]]:
    """{legend label: colours of its bars} over the figure's axes."""
    out: dict[str, set[str]] = {}
    for ax in fig.axes:
        for container in ax.containers:
            if hasattr(container, "patches"):
                out.setdefault(container.get_label(), set()).update(to_hex(p.get_facecolor()) for p in container.patches)
    return out


def mae_rows(models, probes, base=1.0):
    return [{"model": m, "probe": p, "mae": base + 0.1 * i + 0.02 * j, "ci95": [base + 0.1 * i - 0.05, base + 0.1 * i + 0.1]}
            for i, m in enumerate(models) for j, p in enumerate(probes)]


def test_a_probe_keeps_its_colour_in_figures_of_other_models_and_probe_orders(tmp_path, drawn):
    plots.mae_bars(mae_rows(["bge-m3", "multilingual-e5-large"], ["ridge", "mlp", "lightgbm"]), 0.68, tmp_path / "a.png")
    first = bar_colors(drawn())
    plots.mae_bars(mae_rows(["someone-elses-model"], ["lightgbm", "ridge"]), None, tmp_path / "b.png")
    second = bar_colors(drawn())
    assert all(len(c) == 1 for c in first.values())   # one colour a probe within a figure
    assert first["ridge"] == second["ridge"] and first["lightgbm"] == second["lightgbm"]
    assert len({c for cs in first.values() for c in cs}) == 3
    plots.f1_bars([{"model": "x", "probe": "mlp", "f1": 0.7, "ci95": [0.6, 0.8]}], None, tmp_path / "c.png")
    assert bar_colors(drawn())["mlp"] == first["mlp"]   # yes/no figures too


def test_a_model_keeps_its_colour_in_every_error_figure_and_curve(tmp_path, drawn):
    rng = np.random.default_rng(0)
    plots.error_violins({"bge-m3": rng.random(20), "multilingual-MiniLM-L12-v2": rng.random(20)}, tmp_path / "v.png")
    violins = drawn().axes[0].collections[:2]
    bge = to_hex(violins[0].get_facecolor()[0])
    assert bge != to_hex(violins[1].get_facecolor()[0])
    plots.error_histograms({"bge-m3-t512": rng.normal(size=30), "bge-m3": rng.normal(size=30)}, tmp_path / "h.png")
    panels = [ax for ax in drawn().axes if ax.get_visible() and ax.patches]
    assert to_hex(panels[1].patches[0].get_facecolor()) == bge
    assert to_hex(panels[0].patches[0].get_facecolor()) != bge   # a variant is a model of its own
    curve = {"recall": [0.9, 0.95, 1.0], "skip_share": [0.4, 0.3, 0.0]}
    plots.screening_curve({"multilingual-e5-large + mlp": curve, "bge-m3 + ridge": curve}, [0.95], tmp_path / "s.png")
    lines = {ln.get_label(): to_hex(ln.get_color()) for ln in drawn().axes[0].lines}
    assert lines["bge-m3 + ridge"] == bge
    assert bge == plots.model_color("bge-m3") == plots.MODEL_PALETTE[plots.study_models().index("bge-m3")]


def test_names_outside_the_config_get_distinct_stable_colours():
    names = [f"variant-{i}" for i in range(8)] + ["bge-m3", "multilingual-e5-large"]
    colors = plots.model_colors(names)
    assert len(set(colors.values())) == len(names)   # hashed names that collide take the next free colour
    assert plots.model_colors(list(reversed(names))) == colors   # whatever order a figure lists them in
    assert set(plots.MODEL_PALETTE).isdisjoint(plots.PROBE_COLORS.values())
    assert plots.split_label("a+b + lightgbm") == ("a+b", "lightgbm")
    assert plots.split_label("bge-m3") == ("bge-m3", None)


def text_boxes(fig):
    """(text, its display box) of every number written inside an axes (the bars' value labels)."""
    renderer = fig.canvas.get_renderer()
    return [(t, t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts
            if t.get_text().replace(".", "", 1).isdigit()]


def line_ys(ax) -> list[float]:
    """Display y of each horizontal reference line of `ax`."""
    return [ax.transData.transform((0, ln.get_ydata()[0]))[1] for ln in ax.lines
            if len(set(np.asarray(ln.get_ydata(), float))) == 1 and ln.get_linestyle() in ("--", ":")]


@pytest.mark.parametrize("baseline", [0.7, 0.05, 1.3])
def test_bar_labels_are_not_struck_through_by_the_reference_lines(tmp_path, drawn, baseline):
    # 0.7: where a label centred on its bar (height 1.4) would sit; 0.05: through a label at the base;
    # 1.3: just under the bars' tops, so a label must go below it (or above the bar)
    rows = [{"model": m, "probe": p, "mae": 1.4, "ci95": [1.3, 1.5]} for m in ("a", "b") for p in ("ridge", "mlp")]
    plots.mae_bars(rows, baseline, tmp_path / "m.png", mean_mae=2.0)
    fig = drawn()
    ax = fig.axes[0]
    ys = line_ys(ax)
    assert len(ys) == 2
    boxes = text_boxes(fig)
    assert len(boxes) == 4
    for text, box in boxes:
        assert not any(box.y0 - 1 <= y <= box.y1 + 1 for y in ys), (text.get_text(), box, ys)
        assert ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1   # still inside the axes


def test_dataset_bars_keep_their_labels_clear_of_each_datasets_baseline(tmp_path, drawn):
    plots.dataset_bars({"bge-m3": {"d1": 0.9, "d2": 1.2}, "multilingual-e5-large": {"d1": 1.0, "d2": 1.1}},
                       {"d1": 0.06, "d2": 0.55}, tmp_path / "d.png")
    fig = drawn()
    ax = fig.axes[0]
    segments = [s for c in ax.collections for s in c.get_segments()]   # the baselines: no CI bars in this figure
    assert len(segments) == 2
    for text, box in text_boxes(fig):
        x, _ = ax.transData.inverted().transform((box.x0 + box.width / 2, box.y0))
        for (x0, y), (x1, _) in segments:
            if x0 <= x <= x1:
                y_disp = ax.transData.transform((0, y))[1]
                assert not box.y0 - 1 <= y_disp <= box.y1 + 1, text.get_text()


def every_figure(tmp_path):
    """Each plotting function once, on two models, with data across the whole axes."""
    rng = np.random.default_rng(1)
    models = ["bge-m3", "multilingual-e5-large"]
    errors = {m: rng.normal(size=(40, 2)) for m in models}
    yield plots.mae_bars, (mae_rows(models, ["ridge", "mlp"]), 0.68, tmp_path / "1.png"), {"mean_mae": 2.0}
    yield plots.f1_bars, ([{"model": m, "probe": "logistic", "f1": 0.7, "ci95": [0.6, 0.8]} for m in models], 0.9,
                          tmp_path / "2.png"), {"always_yes_f1": 0.5}
    yield plots.quality_vs_speed, ([{"label": f"{m} + ridge", "mae": 1 + i / 10, "articles_per_s": 10 * (i + 1),
                                     "ci": [0.9, 1.3]} for i, m in enumerate(models)], 0.68, tmp_path / "3.png"), {}
    yield plots.error_histograms, (errors, tmp_path / "4.png"), {}
    yield plots.error_violins, ({m: np.abs(e).mean(axis=1) for m, e in errors.items()}, tmp_path / "5.png"), {}
    yield plots.pred_vs_true, ({m: (rng.random((40, 2)) * 10, rng.random((40, 2)) * 10) for m in models}, ["a", "b"],
                               tmp_path / "6.png"), {}
    # the worst articles: long ones, with high error, top right; and short ones top left
    tokens = np.r_[rng.integers(10, 2000, 38), 12, 1900]
    mae = np.r_[rng.random(38), 3.0, 3.0]
    yield plots.error_vs_tokens, ({m: {"token_counts": tokens, "mae": mae, "max_tokens": 512} for m in models},
                                  tmp_path / "7.png"), {}
    yield plots.error_by_language, ({m: {"en": {"n": 30, "mae": 1.0}, "fr": {"n": 10, "mae": 1.2}} for m in models},
                                    tmp_path / "8.png"), {}
    yield plots.bias_by_score_bin, ({m: [{"low": 0, "high": 5, "n": 9, "bias": 0.5}, {"low": 5, "high": 10, "n": 9,
                                                                                    "bias": -0.5}] for m in models},
                                    tmp_path / "9.png"), {}
    curve = {"recall": np.linspace(0.7, 1, 30), "skip_share": np.linspace(0.6, 0, 30)}
    yield plots.screening_curve, ({f"{m} + mlp": curve for m in models}, [0.95, 0.99], tmp_path / "10.png"), {}
    points = [{"n_train": n, "test_mae": 1.5 - n / 1000, "mae_ci95": [1.4 - n / 1000, 1.6 - n / 1000]}
              for n in (50, 100, 200, 400)]
    yield plots.learning_curve, ({f"{m} + {p}": points for m in models for p in ("ridge", "mlp")}, 0.68,
                                 tmp_path / "11.png"), {}
    yield plots.dataset_bars, ({m: {"d1": 1.0, "d2": 1.1} for m in models}, {"d1": 0.7, "d2": None},
                               tmp_path / "12.png"), {}


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1


@pytest.mark.slow
def test_no_legend_covers_an_axes_in_any_figure(tmp_path, drawn):
    for fn, args, kwargs in every_figure(tmp_path):
        fig = drawn() if fn(*args, **kwargs) else None
        renderer = fig.canvas.get_renderer()
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        assert legends, fn.__name__   # every figure says what its colours and lines are
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                if ax.get_visible() and ax.get_label() != "<colorbar>":
                    assert not overlaps(box, ax.bbox), f"{fn.__name__}: legend over the axes {ax.get_title()!r}"


def test_the_learning_curve_tells_probes_apart_by_marker_and_models_by_colour(tmp_path, drawn):
    points = [{"n_train": n, "test_mae": 1.0, "mae_ci95": [0.9, 1.1]} for n in (50, 100)]
    plots.learning_curve({"bge-m3 + ridge": points, "bge-m3 + mlp": points, "multilingual-e5-large + ridge": points},
                         None, tmp_path / "l.png")
    lines = {c.get_label(): c.lines[0] for c in drawn().axes[0].containers}
    assert to_hex(lines["bge-m3 + ridge"].get_color()) == to_hex(lines["bge-m3 + mlp"].get_color())
    assert lines["bge-m3 + ridge"].get_marker() != lines["bge-m3 + mlp"].get_marker()
    assert to_hex(lines["bge-m3 + ridge"].get_color()) != to_hex(lines["multilingual-e5-large + ridge"].get_color())
    assert lines["bge-m3 + ridge"].get_marker() == lines["multilingual-e5-large + ridge"].get_marker()
