"""The Word report of phase 6, built only from the JSON results of phases 2-5.

`load_inputs` reads what the phases wrote under `results/` (the evaluation JSON is
required; training summary, benchmarks, error summary and figures are optional) and
`write_report` turns them into a .docx. Every number in the document is read from those
files (or derived from them, like a difference of two MAEs); none is typed into this code.
A section whose input is missing says so and names the phase that makes it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import math
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.image.exceptions import UnrecognizedImageError
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from PIL import Image, UnidentifiedImageError

from study.artifacts import atomic_path, read_json
from study.cache import split_variant
from study.config import Config
from study.errors import StudyError
from study.metrics import success_band
from study.probes import describe_selected

# -- presentation settings (formatting only, never results) ------------------------------
DECIMALS = 3            # MAE, RMSE, Spearman, CIs, biases
FIGURE_WIDTH_CM = 15.5
FIGURE_MAX_HEIGHT_CM = 11.0
TEXT_WIDTH_CM = 16.6    # A4 minus the margins set in Writer
KEEP_TOGETHER_ROWS = 20  # tables up to this many rows are not split across pages
SMALL_GROUP = 30        # fewer test articles than this: a per-group MAE is flagged as unreliable
WORST_SHOWN = 10        # worst-scored articles listed per report
LIBRARIES = ("torch", "sentence-transformers", "transformers", "tokenizers", "numpy", "scipy", "scikit-learn",
             "lightgbm", "matplotlib", "python-docx", "pydantic")
HEADER_FILL = "D9E2F3"
CAPTIONS = {  # figure name (file name without the dataset prefix, or error-summary key) -> caption
    "mae_by_model": "Test MAE per model and probe with 95% bootstrap CIs; dotted line: train-mean predictor, "
                    "dashed line (when one is known): fine-tuned baseline",
    "dimension_mae_heatmap": "Test MAE per model, probe and dimension",
    "error_histograms": "Distribution of the signed errors (prediction − truth) of each model",
    "error_violins": "Distribution of the per-article MAE of each model",
    "pred_vs_true": "Predicted against true scores; the black line is the mean prediction per unit of true score",
    "dimension_mae": "Test MAE per model and dimension",
    "error_vs_tokens": "Per-article MAE against article length in tokens; the dashed line is the model's "
                       "truncation point",
    "error_by_language": "Test MAE per language",
    "bias_by_score_bin": "Mean signed error per true-score bin: do the probes pull extreme scores toward the mean?",
}


# -- inputs --------------------------------------------------------------------------------
@dataclass
class Inputs:
    dataset: str
    results: Path
    evaluation: dict
    training: dict | None = None
    benchmarks: dict | None = None
    errors: dict | None = None
    comparison_figures: dict[str, Path] = field(default_factory=dict)   # name -> png of compare_results.py
    comparison_report: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)   # what was read, for the appendix


def input_paths(results: Path, dataset: str) -> dict[str, Path]:
    return {"evaluation": results / f"{dataset}_evaluation_results.json",
            "training": results / f"{dataset}_training_summary.json",
            "benchmarks": results / "benchmarks" / f"{dataset}_benchmarks.json",
            "errors": results / "analysis" / f"{dataset}_error_summary.json"}


def load_inputs(cfg: Config, dataset: str) -> Inputs:
    """Everything the report reads; StudyError only when the evaluation JSON is missing or bad."""
    results = cfg.results_path
    paths = input_paths(results, dataset)
    evaluation = read_json(paths["evaluation"], "evaluation results (run evaluate.py first)")
    if not isinstance(evaluation, dict) or not evaluation.get("models") or "best" not in evaluation:
        raise StudyError(f"{paths['evaluation']}: expected evaluate.py's output with 'models' and 'best'")
    inputs = Inputs(dataset=dataset, results=results, evaluation=evaluation, files={"evaluation": paths["evaluation"]})
    for key in ("training", "benchmarks", "errors"):
        if paths[key].is_file():
            setattr(inputs, key, read_json(paths[key]))
            inputs.files[key] = paths[key]
    figures = results / "figures"
    inputs.comparison_figures = {p.stem[len(dataset) + 1:]: p for p in sorted(figures.glob(f"{dataset}_*.png"))}
    md = results / f"{dataset}_comparison_report.md"
    inputs.comparison_report = md if md.is_file() else None
    return inputs


# -- number formatting ----------------------------------------------------------------------
def _ok(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x, decimals: int = DECIMALS) -> str:
    """`x` with a fixed number of decimals; an em dash for a missing value."""
    return f"{x:.{decimals}f}" if _ok(x) else "—"


def signed(x, decimals: int = DECIMALS) -> str:
    return f"{x:+.{decimals}f}" if _ok(x) else "—"


def ci(pair, decimals: int = DECIMALS) -> str:
    return f"{num(pair[0], decimals)}–{num(pair[1], decimals)}" if pair and len(pair) == 2 else "—"


def pct(x, decimals: int = 1) -> str:
    return f"{100 * x:.{decimals}f}%" if _ok(x) else "—"


def _overlap(a, b) -> bool:
    return bool(a and b) and a[0] <= b[1] and b[0] <= a[1]


def _humanise(name: str) -> str:
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _caption_for(name: str) -> str:
    return CAPTIONS.get(name) or _humanise(name)


# -- reading the evaluation JSON ------------------------------------------------------------
def probes_of(entry: dict) -> list[str]:
    """Probe names of a model entry, in the order evaluate.py wrote them."""
    return [k for k, v in entry.items() if isinstance(v, dict) and "overall_mae" in v]


def chosen_probe(entry: dict) -> str | None:
    """The model's probe with the lowest validation MAE (the choice never looks at test data)."""
    probes = [p for p in probes_of(entry) if _ok(entry[p].get("val_mae"))]
    return min(probes, key=lambda p: entry[p]["val_mae"]) if probes else None


def base_model(cfg: Config, variant: str) -> tuple[str, int | None]:
    try:
        return split_variant(cfg, variant)
    except StudyError:
        return variant, None


def _band(evaluation: dict, mae) -> str | None:
    bands = evaluation.get("success_bands") or {}
    if not evaluation.get("baseline_mae") or not _ok(mae) or not {"closes_gap", "partial"} <= set(bands):
        return None
    return success_band(mae, bands["closes_gap"], bands["partial"])


# -- document writer ------------------------------------------------------------------------
class Writer:
    """A thin layer over python-docx: numbered headings, captioned tables and figures."""

    def __init__(self, title: str, subtitle: str):
        self.doc = Document()
        self.tables = self.figures = 0
        self.embedded: set[Path] = set()
        self.missing: list[str] = []
        section = self.doc.sections[0]
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Cm(2.2))
        section.top_margin = section.bottom_margin = Cm(2.0)
        normal = self.doc.styles["Normal"]
        normal.font.name, normal.font.size = "Calibri", Pt(10.5)
        normal.paragraph_format.space_after = Pt(4)
        self.doc.core_properties.title = title
        self.doc.add_paragraph(title, style="Title")
        self.doc.add_paragraph(subtitle, style="Subtitle")
        footer = section.footer.paragraphs[0]
        footer.text = title
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER

    def heading(self, text: str, level: int = 1):
        self.doc.add_heading(text, level=level)

    def para(self, *parts, style: str | None = None):
        """A paragraph of plain strings and (text, "b"|"i") runs."""
        p = self.doc.add_paragraph(style=style)
        for part in parts:
            text, fmt = part if isinstance(part, tuple) else (part, "")
            run = p.add_run(text)
            run.bold, run.italic = "b" in fmt, "i" in fmt
        return p

    def bullet(self, *parts):
        return self.para(*parts, style="List Bullet")

    def unavailable(self, what: str, why: str):
        """The note a section prints when its input is missing."""
        self.missing.append(what)
        p = self.para((f"{what} unavailable: ", "b"), (why, "i"))
        for run in p.runs:
            run.font.color.rgb = RGBColor(0x80, 0x30, 0x30)

    def table(self, caption: str, header: list[str], rows: list[list[str]], align: str, font_pt: float = 9):
        """A captioned table: shaded header row repeated on each page; align 'l'/'r'/'c' per column."""
        self.tables += 1
        cap = self.doc.add_paragraph(style="Caption")
        cap.add_run(f"Table {self.tables}. ").bold = True
        cap.add_run(caption)
        cap.paragraph_format.keep_with_next = True
        table = self.doc.add_table(rows=1 + len(rows), cols=len(header))
        table.style = "Table Grid"
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        where = {"l": WD_ALIGN_PARAGRAPH.LEFT, "r": WD_ALIGN_PARAGRAPH.RIGHT, "c": WD_ALIGN_PARAGRAPH.CENTER}
        for r, values in enumerate([header, *rows]):
            for c, value in enumerate(values):
                cell = table.rows[r].cells[c]
                cell.text = ""
                p = cell.paragraphs[0]
                p.paragraph_format.space_after = Pt(0)
                p.alignment = where["l" if r == 0 and align[c] == "l" else align[c]]
                run = p.add_run(str(value))
                run.font.size = Pt(font_pt)
                if r == 0:
                    run.bold = True
                    shading = OxmlElement("w:shd")
                    shading.set(qn("w:val"), "clear")
                    shading.set(qn("w:color"), "auto")
                    shading.set(qn("w:fill"), HEADER_FILL)
                    cell._tc.get_or_add_tcPr().append(shading)
        self._widths(table, [header, *rows], font_pt)
        if len(rows) <= KEEP_TOGETHER_ROWS:  # a short table stays on one page
            for row in table.rows[:-1]:
                for cell in row.cells:
                    for p in cell.paragraphs:
                        p.paragraph_format.keep_with_next = True
        repeat = OxmlElement("w:tblHeader")
        repeat.set(qn("w:val"), "true")
        table.rows[0]._tr.get_or_add_trPr().append(repeat)
        self.doc.add_paragraph().paragraph_format.space_after = Pt(2)
        return table

    @staticmethod
    def _widths(table, cells: list[list], font_pt: float):
        """Column widths from the text they hold (Word and LibreOffice both honour explicit widths)."""
        def need(text: str, header: bool) -> float:
            words = str(text).split()
            longest = max((len(w) for w in words), default=1) * (1.15 if header else 1.0)   # bold is wider
            # a header may wrap at its spaces; a value should not wrap below its longest word
            return max(longest, min(len(str(text)), 12 if header else 28))
        chars = [max(need(row[c], r == 0) for r, row in enumerate(cells)) for c in range(len(cells[0]))]
        natural = [n * font_pt * 0.0235 + 0.45 for n in chars]   # ~average glyph width + cell padding
        cap = max(natural)
        if sum(natural) > TEXT_WIDTH_CM:  # narrow the widest columns first: short ones keep their width
            lo, hi = 0.0, cap
            for _ in range(40):
                cap = (lo + hi) / 2
                lo, hi = (cap, hi) if sum(min(w, cap) for w in natural) < TEXT_WIDTH_CM else (lo, cap)
        widths = [min(w, cap) for w in natural]
        table.autofit = False
        grid = table._tbl.tblGrid.findall(qn("w:gridCol"))
        for c, width in enumerate(widths):
            grid[c].set(qn("w:w"), str(int(Cm(width).twips)))
            for cell in table.columns[c].cells:
                cell.width = Cm(width)

    def figure(self, path: Path, caption: str) -> bool:
        path = Path(path)
        if path.resolve() in self.embedded:
            return True
        if not path.is_file():
            self.unavailable(f"Figure {path.name}", f"{path} was not found")
            return False
        try:
            with Image.open(path) as im:
                aspect = im.height / im.width
            size = ({"height": Cm(FIGURE_MAX_HEIGHT_CM)} if FIGURE_WIDTH_CM * aspect > FIGURE_MAX_HEIGHT_CM
                    else {"width": Cm(FIGURE_WIDTH_CM)})
            self.doc.add_picture(str(path), **size)
        except (UnrecognizedImageError, UnidentifiedImageError, OSError, ValueError) as exc:
            self.unavailable(f"Figure {path.name}", f"{path} could not be read ({exc})")
            return False
        self.doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        self.doc.paragraphs[-1].paragraph_format.keep_with_next = True
        self.figures += 1
        self.embedded.add(path.resolve())
        cap = self.doc.add_paragraph(style="Caption")
        cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
        cap.add_run(f"Figure {self.figures}. ").bold = True
        cap.add_run(caption)
        return True

    def code(self, text: str):
        p = self.doc.add_paragraph()
        p.paragraph_format.space_after = Pt(0)
        run = p.add_run(text)
        run.font.name, run.font.size = "Courier New", Pt(7.5)

    def save(self, out: Path):
        with atomic_path(out, "wb") as fh:
            self.doc.save(fh)


# -- the report ---------------------------------------------------------------------------
class Report:
    def __init__(self, cfg: Config, inputs: Inputs, out: Path):
        self.cfg, self.inp, self.out = cfg, inputs, Path(out)
        self.ev = inputs.evaluation
        self.models: dict = self.ev["models"]
        self.best: dict = self.ev["best"]
        self.baseline = self.ev.get("baseline_mae")
        self.chosen = {v: chosen_probe(e) for v, e in self.models.items()}
        title = "Multilingual embeddings + probes against a fine-tuned scorer"
        when = self.ev.get("evaluated_at", "unknown time")
        self.w = Writer(title, f"Dataset {inputs.dataset} · evaluated {when} · report generated "
                               f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}")

    # helpers -------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.inp.results.resolve().parent))
        except ValueError:
            return str(path)

    def label(self, variant: str, probe: str | None) -> str:
        return f"{variant} + {probe}" if probe else variant

    def error_figures(self) -> dict[str, Path]:
        figs = (self.inp.errors or {}).get("figures") or {}
        return {name: self.inp.results / rel for name, rel in figs.items() if isinstance(rel, str)}

    def place(self, which: str, names=None) -> int:
        """Embed the comparison ("cmp") or error-analysis ("err") figures named (default: those not yet in)."""
        if which == "cmp":
            figs, source = self.inp.comparison_figures, "compare_results.py"
        else:
            probe = (self.inp.errors or {}).get("probe", "?")
            figs, source = self.error_figures(), f"analyze_error_distribution.py, {probe} probe"
        placed = 0
        for name, path in figs.items():
            if (names is None or name in names) and Path(path).resolve() not in self.w.embedded:
                placed += self.w.figure(path, f"{_caption_for(name)} ({source}).")
        return placed

    def speed_points(self) -> list[dict]:
        bench = (self.inp.benchmarks or {}).get("models") or {}
        points = []
        for variant, entry in self.models.items():
            probe = self.chosen[variant]
            b = bench.get(variant) or {}
            if probe and _ok(b.get("articles_per_s")):
                points.append({"label": self.label(variant, probe), "mae": entry[probe]["overall_mae"],
                               "articles_per_s": b["articles_per_s"]})
        return points

    # sections ------------------------------------------------------------------------------
    def build(self) -> dict:
        self.executive_summary()
        self.questions()
        self.method()
        self.results()
        self.error_analysis()
        self.limitations()
        self.appendix()
        self.w.save(self.out)
        return {"path": self.out, "tables": self.w.tables, "figures": self.w.figures, "missing": self.w.missing,
                "sections": [p.text for p in self.w.doc.paragraphs if p.style.name == "Heading 1"]}

    def executive_summary(self):
        w, b, ev = self.w, self.best, self.ev
        w.heading("1. Executive summary")
        band = b.get("band")
        if band and self.baseline:
            w.para(("Verdict: ", "b"), (band, "b"),
                   f" — the best probe's test MAE is {num(b['test_mae'])} against the fine-tuned model's "
                   f"{num(self.baseline)} (gap {signed(b.get('gap_to_baseline'))}).")
        else:
            w.para(("Verdict: none. ", "b"),
                   "No fine-tuned baseline MAE is known for this dataset (set baseline_mae for it in "
                   "config.yaml, or give evaluate.py --baseline-mae or --baseline-predictions).")
        w.bullet("Best model and probe, chosen on validation MAE (", (self.label(b["model"], b["probe"]), "b"),
                 f"): validation MAE {num(b['val_mae'])}, test MAE {num(b['test_mae'])} "
                 f"(95% bootstrap CI {ci(b['mae_ci95'])}, {ev.get('n_test', '?')} test articles).")
        if self.baseline:
            w.bullet(f"Fine-tuned baseline: MAE {num(self.baseline)}, from {ev.get('baseline_source', 'unknown source')}. "
                     f"Gap to it: {signed(b.get('gap_to_baseline'))} MAE"
                     + (" (the probe is worse)." if (b.get("gap_to_baseline") or 0) > 0
                        else " (the probe is as good or better)."))
        bands = ev.get("success_bands") or {}
        if bands:
            w.bullet(f"Success bands on the best test MAE: closes the gap at or below {num(bands.get('closes_gap'), 2)}, "
                     f"partial at or below {num(bands.get('partial'), 2)}, no improvement above.")
        mean = ev.get("mean_predictor") or {}
        if mean:
            w.bullet(f"Reference: predicting the training mean of every dimension gives test MAE "
                     f"{num(mean.get('overall_mae'))}.")
        w.para(("Short answers", "b"))
        for text in self.short_answers():
            w.bullet(text)

    def short_answers(self) -> list[str]:
        out = []
        bge = [v for v in self.models if self.is_bge(v) and self.chosen[v]]
        if not bge:
            out.append("Does bge-m3 close the gap? Not answered: bge-m3 was not evaluated on this dataset.")
        else:
            v = min(bge, key=lambda v: self.models[v][self.chosen[v]]["val_mae"])
            m = self.models[v][self.chosen[v]]
            band = _band(self.ev, m["overall_mae"])
            out.append(f"Does bge-m3 close the gap? {self.label(v, self.chosen[v])}: test MAE {num(m['overall_mae'])}"
                       + (f", band '{band}'." if band else " (no baseline to compare with)."))
        truncated = [(v, e) for v, e in self.models.items()
                     if _ok(e.get("truncated_fraction")) and e["truncated_fraction"] > 0]
        if truncated:
            parts = []
            for v, e in truncated:
                t = (e.get(self.chosen[v]) or {}).get("truncation") or {}
                d = self._trunc_diff(t)
                parts.append(f"{v} ({e.get('max_tokens')} tokens, {pct(e['truncated_fraction'])} truncated, "
                             f"MAE truncated − whole {signed(d)})")
            out.append("How much does truncation hurt? " + "; ".join(parts) + ".")
        else:
            out.append("How much does truncation hurt? No test article is longer than any model's max tokens.")
        points = self.speed_points()
        if points:
            fastest = max(points, key=lambda p: p["articles_per_s"])
            best = min(points, key=lambda p: p["mae"])
            out.append(f"Quality against speed: fastest {fastest['label']} ({num(fastest['articles_per_s'], 1)} "
                       f"articles/s, MAE {num(fastest['mae'])}); most accurate {best['label']} "
                       f"({num(best['articles_per_s'], 1)} articles/s, MAE {num(best['mae'])}).")
        else:
            out.append("Quality against speed: no benchmark results (run benchmark_speed.py).")
        counts: dict[str, int] = {}
        for p in self.chosen.values():
            if p:
                counts[p] = counts.get(p, 0) + 1
        out.append("Which probe works best? Chosen on validation: "
                   + ", ".join(f"{p} for {n} of {len(self.models)} model(s)" for p, n in counts.items()) + "; "
                   + self.probe_overlap_summary() + ".")
        return out

    # the four questions ----------------------------------------------------------------------
    def is_bge(self, variant: str) -> bool:
        model, _ = base_model(self.cfg, variant)
        spec = self.cfg.embedding_models.get(model)
        return "bge-m3" in variant.lower() or bool(spec and "bge-m3" in spec.model_name.lower())

    def questions(self):
        w = self.w
        w.heading("2. Answers to the study's questions")
        self.q_bge()
        self.q_truncation()
        self.q_speed()
        self.q_probes()

    def q_bge(self):
        w, ev = self.w, self.ev
        w.heading("2.1 Does bge-m3 close the gap?", 2)
        bge = [v for v in self.models if self.is_bge(v) and self.chosen[v]]
        if not bge:
            w.unavailable("bge-m3 answer", "bge-m3 was not evaluated on this dataset (models evaluated: "
                          + ", ".join(self.models) + "). Run phases 1-3 with --models bge-m3 to answer it.")
            return
        others = [v for v in self.models if v not in bge and self.chosen[v]]
        rival = min(others, key=lambda v: self.models[v][self.chosen[v]]["val_mae"]) if others else None
        for v in bge:
            p = self.chosen[v]
            m = self.models[v][p]
            band = _band(ev, m["overall_mae"])
            text = [f"{self.label(v, p)} (probe chosen on validation) reaches test MAE {num(m['overall_mae'])} "
                    f"(95% CI {ci(m.get('mae_ci95'))})"]
            if self.baseline:
                text.append(f"; the fine-tuned model's is {num(self.baseline)} (gap "
                            f"{signed(m['overall_mae'] - self.baseline)}), band: {band}.")
            else:
                text.append("; no fine-tuned baseline is known, so no band.")
            w.para(*text)
            vs = m.get("vs_baseline")
            if vs:
                lo, hi = vs["difference_ci95"]
                verdict = ("the interval excludes zero: the difference is real at this test size"
                           if lo > 0 or hi < 0 else "the interval includes zero: the two are not distinguishable here")
                w.para(f"Paired on the {vs['n_articles']} test articles the fine-tuned model also scored: "
                       f"probe MAE {num(vs['probe_mae'])}, fine-tuned MAE {num(vs['baseline_mae'])}, difference "
                       f"{signed(vs['mae_difference'])} (95% CI {ci(vs['difference_ci95'])}); {verdict}.")
            if rival:
                r = self.models[rival][self.chosen[rival]]
                overlap = _overlap(m.get("mae_ci95"), r.get("mae_ci95"))
                w.para(f"Best other model: {self.label(rival, self.chosen[rival])}, test MAE {num(r['overall_mae'])} "
                       f"(95% CI {ci(r.get('mae_ci95'))}); the two intervals "
                       + ("overlap, so the difference is within the uncertainty." if overlap
                          else "do not overlap, so the difference exceeds the uncertainty."))

    @staticmethod
    def _trunc_diff(t: dict):
        a, b = (t.get("truncated") or {}).get("mae"), (t.get("not_truncated") or {}).get("mae")
        return a - b if _ok(a) and _ok(b) else None

    def q_truncation(self):
        w = self.w
        w.heading("2.2 How much does truncation hurt?", 2)
        rows = []
        for v, e in self.models.items():
            p = self.chosen[v]
            t = (e.get(p) or {}).get("truncation") or {}
            tr, nt = t.get("truncated") or {}, t.get("not_truncated") or {}
            rows.append([v, str(e.get("max_tokens", "—")), pct(e.get("truncated_fraction")),
                         num(e.get("mean_token_count"), 0), p or "—", str(tr.get("n", "—")), num(tr.get("mae")),
                         str(nt.get("n", "—")), num(nt.get("mae")), signed(self._trunc_diff(t))])
        w.table("Test MAE of the articles cut at the model's max tokens and of the whole ones, for the probe chosen "
                "on validation; Cut is the share of test articles cut, Δ MAE = MAE cut − MAE whole (evaluation JSON, "
                "'truncation').",
                ["Model", "Max tokens", "Cut", "Mean tokens", "Probe", "n cut", "MAE cut",
                 "n whole", "MAE whole", "Δ MAE"], rows, "lrrrlrrrrr", font_pt=8)
        for v, e in self.models.items():
            t = (e.get(self.chosen[v]) or {}).get("truncation") or {}
            n_tr = (t.get("truncated") or {}).get("n") or 0
            n_wh = (t.get("not_truncated") or {}).get("n") or 0
            if not n_tr:
                w.bullet(f"{v} (max {e.get('max_tokens')} tokens): no test article is truncated, so truncation "
                         "cannot hurt it here.")
            elif not n_wh:
                w.bullet(f"{v} (max {e.get('max_tokens')} tokens): every test article is truncated; there is no "
                         "whole-article group to compare with.")
            else:
                d = self._trunc_diff(t)
                w.bullet(f"{v} (max {e.get('max_tokens')} tokens) cuts {pct(e.get('truncated_fraction'))} of the test "
                         f"articles; their MAE is {signed(d)} against whole articles"
                         + (" (worse)." if d is not None and d > 0 else " (not worse)."))
        # the same model at several max_tokens (--max-tokens sweep) is the direct test
        groups: dict[str, list[str]] = {}
        for v in self.models:
            groups.setdefault(base_model(self.cfg, v)[0], []).append(v)
        for model, variants in groups.items():
            if len(variants) > 1:
                parts = [f"{self.models[v].get('max_tokens')} tokens: MAE "
                         f"{num(self.models[v][self.chosen[v]]['overall_mae'])}" for v in variants if self.chosen[v]]
                w.para(f"Same model, different max tokens ({model}): " + "; ".join(parts) + ".")
        w.para(("Caveat: ", "i"), ("truncated articles are the long ones, so the difference mixes the loss of text with "
                                   "whatever else differs in long articles. The clean test is one model embedded at "
                                   "several max tokens (embed_articles.py --max-tokens).", "i"))
        token_figs = [n for n in self.error_figures() if "token" in n.lower()]
        if not self.place("err", token_figs):
            w.unavailable("Error-vs-token-count figure",
                          "no error analysis with a token figure was found (run analyze_error_distribution.py).")

    def q_speed(self):
        w, bench = self.w, self.inp.benchmarks
        w.heading("2.3 Quality against speed", 2)
        if not bench:
            w.unavailable("Speed comparison", "no benchmark results were found "
                          f"({self.rel(input_paths(self.inp.results, self.inp.dataset)['benchmarks'])}); "
                          "run benchmark_speed.py to measure speed, load time and memory.")
            return
        bm, e2e = bench.get("models") or {}, bench.get("end_to_end") or {}
        ft = bench.get("fine_tuned_ms_per_article")
        w.para(f"Measured on {bench.get('device', '?')} ({bench.get('device_name') or 'unnamed device'})"
               + (f"; the fine-tuned model costs {num(ft[0], 0)}–{num(ft[1], 0)} ms per article (config)." if ft else "."))
        rows = []
        for v, e in self.models.items():
            p, b = self.chosen[v], bm.get(v)
            if not b:
                rows.append([v, p or "—", num(e[p]["overall_mae"]) if p else "—", "—", "—", "—", "—", "—", "not run"])
                continue
            end = (e2e.get(v) or {}).get(p) or {}
            speed = end.get("speedup_vs_fine_tuned")
            rows.append([v, p or "—", num(e[p]["overall_mae"]) if p else "—", num(b.get("articles_per_s"), 1),
                         num(b.get("tokens_per_s"), 0), num(b.get("peak_memory_mb"), 0), num(end.get("ms_per_article"), 2),
                         f"{num(speed[0], 2)}–{num(speed[1], 2)}×" if speed else "—",
                         f"{b.get('dtype', '?')}, batch {b.get('batch_size', '?')}"
                         + (", random weights" if b.get("random_weights") else "")])
        w.table("Test MAE (probe chosen on validation) against embedding throughput, memory and end-to-end cost "
                "(benchmarks JSON).",
                ["Model", "Probe", "Test MAE", "Articles/s", "Tokens/s", "Peak MB", "ms/article end to end",
                 "× fine-tuned speed", "Setting"], rows, "llrrrrrrl", font_pt=8)
        points = self.speed_points()
        if points:
            from study.plots import quality_vs_speed

            chart = self.out.with_name(f"{self.out.stem}_figures") / "quality_vs_speed.png"
            chart.parent.mkdir(parents=True, exist_ok=True)
            quality_vs_speed(points, self.baseline, chart)
            w.figure(chart, "Test MAE against embedding throughput (articles/s), one point per model with the probe "
                            "chosen on validation" + ("; the line is the fine-tuned baseline." if self.baseline else "."))
            front = [p for p in points if not any(q["mae"] < p["mae"] and q["articles_per_s"] > p["articles_per_s"]
                                                  for q in points)]
            w.para("Not beaten on both speed and MAE by another model: "
                   + ", ".join(f"{p['label']} ({num(p['articles_per_s'], 1)} articles/s, MAE {num(p['mae'])})"
                               for p in sorted(front, key=lambda p: -p["articles_per_s"])) + ".")
        else:
            w.unavailable("Quality-speed chart", "none of the evaluated models was benchmarked.")
        random = [v for v, b in bm.items() if b.get("random_weights")]
        if random:
            w.para(("Speed only: ", "b"), ", ".join(random) + " were benchmarked with random weights of the same "
                   "architecture (the real weights were not available there). Their speed figures hold; their quality "
                   "figures come from the evaluation of the real model, not from the benchmark.")

    def probe_overlap_summary(self) -> str:
        pairs = overlaps = 0
        for v, e in self.models.items():
            p = self.chosen[v]
            for q in probes_of(e):
                if p and q != p:
                    pairs += 1
                    overlaps += _overlap(e[p].get("mae_ci95"), e[q].get("mae_ci95"))
        if not pairs:
            return "only one probe per model, nothing to compare"
        return (f"in {overlaps} of {pairs} comparisons with the other probes of the same model the 95% CIs overlap"
                + (" (differences within the uncertainty)" if overlaps == pairs else ""))

    def q_probes(self):
        w = self.w
        w.heading("2.4 Which probe works best?", 2)
        paired = any("vs_baseline" in e[p] for e in self.models.values() for p in probes_of(e))
        rows = []
        for v, e in self.models.items():
            c = e.get(self.chosen[v]) or {}
            for p in probes_of(e):
                m = e[p]
                if p == self.chosen[v]:
                    against = "chosen on validation"
                elif _overlap(m.get("mae_ci95"), c.get("mae_ci95")):
                    against = "CIs overlap"
                else:
                    against = "CIs apart: " + ("better" if m["overall_mae"] < c["overall_mae"] else "worse")
                rows.append([v, p, num(m.get("val_mae")), num(m.get("overall_mae")), ci(m.get("mae_ci95")), against])
        w.table("Each probe's validation and test MAE with its 95% bootstrap CI, set against the probe chosen on "
                "validation for the same model (evaluation JSON).",
                ["Model", "Probe", "Val MAE", "Test MAE", "95% CI", "Against the chosen probe"], rows, "llrrrl")
        for v, e in self.models.items():
            p = self.chosen[v]
            if not p:
                continue
            best_test = min(probes_of(e), key=lambda q: e[q]["overall_mae"])
            verdicts = [f"{q} {'overlaps' if _overlap(e[p].get('mae_ci95'), e[q].get('mae_ci95')) else 'does not overlap'}"
                        for q in probes_of(e) if q != p]
            w.bullet(f"{v}: {p} chosen on validation (val MAE {num(e[p]['val_mae'])})"
                     + ("" if best_test == p else f"; {best_test} is lowest on test") + (
                         f"; its CI against the other probes: {', '.join(verdicts)}." if verdicts else "."))
        w.para("Overall: " + self.probe_overlap_summary() + ". Overlapping marginal intervals is a conservative "
               "check; all probes score the same test articles, so a paired comparison could separate smaller "
               "differences.")
        if paired:
            rows = []
            for v, e in self.models.items():
                for p in probes_of(e):
                    vs = e[p].get("vs_baseline")
                    if vs:
                        rows.append([v, p, str(vs["n_articles"]), num(vs["probe_mae"]), num(vs["baseline_mae"]),
                                     signed(vs["mae_difference"]), ci(vs["difference_ci95"])])
            w.table("Paired comparison with the fine-tuned model on the test articles both scored: probe MAE minus "
                    "fine-tuned MAE (a CI that excludes zero is a real difference).",
                    ["Model", "Probe", "n", "Probe MAE", "Fine-tuned MAE", "Difference", "95% CI"], rows, "llrrrrr")

    # method --------------------------------------------------------------------------------
    def method(self):
        w, ev, tr = self.w, self.ev, self.inp.training
        w.heading("3. Method")
        w.heading("3.1 Data", 2)
        dims = ev.get("dimension_names") or []
        n_train = n_val = None
        for entry in ((tr or {}).get("models") or {}).values():
            for meta in entry.values():
                n_train, n_val = meta.get("n_train"), meta.get("n_val")
                break
            break
        low, high = self.cfg.score_range
        w.para(f"Dataset {self.inp.dataset}: {n_train if n_train is not None else '? (no training summary)'} training, "
               f"{n_val if n_val is not None else '?'} validation and {ev.get('n_test', '?')} test articles, "
               f"each scored {low:g}–{high:g} on {len(dims)} dimensions: {', '.join(dims)}. Validation articles choose "
               f"every hyper-parameter, the stopping point of each probe and the best model; test articles are only "
               f"scored.")
        langs = ev.get("language_counts") or {}
        total = sum(langs.values()) or 1
        if langs:
            w.table("Languages of the test articles (given in the data or detected).", ["Language", "Test articles", "Share"],
                    [[lang, str(n), pct(n / total)] for lang, n in langs.items()], "lrr")
        w.heading("3.2 Models", 2)
        rows = []
        for v, e in self.models.items():
            model, _ = base_model(self.cfg, v)
            spec = self.cfg.embedding_models.get(model)
            rows.append([v, spec.model_name if spec else "(not in config.yaml)", str(e.get("embedding_dim", "—")),
                         str(e.get("max_tokens", "—")), repr(spec.prefix) if spec and spec.prefix else "none",
                         spec.note if spec else ""])
        w.table("Embedding models (config.yaml embedding_models; dimension and max tokens as evaluated).",
                ["Model", "Source", "Dim", "Max tokens", "Prefix", "Note"], rows, "llrrll", font_pt=8)
        w.para("Each article is embedded as title, blank line, content (with the model's prefix), cut at the model's "
               "max tokens; embeddings are frozen and cached with a fingerprint of what produced them (appendix C).")
        w.heading("3.3 Probes", 2)
        rows = []
        for probe in dict.fromkeys(p for e in self.models.values() for p in probes_of(e)):
            settings = self.probe_settings(probe)
            chosen = "; ".join(f"{v}: {describe_selected(e[probe].get('selected'))}"
                               for v, e in self.models.items() if probe in e)
            rows.append([probe, settings, chosen])
        w.table("Probe settings (training summary hyperparameters, else config.yaml) and what validation chose.",
                ["Probe", "Settings", "Chosen on validation"], rows, "lll", font_pt=8)
        w.para(f"Random seed {ev.get('random_seed', self.cfg.random_seed)} for every random step; 95% confidence "
               f"intervals from {ev.get('bootstrap_samples', '?')} bootstrap resamples of the test articles. MAE pools "
               f"every (article, dimension) error; Spearman is the mean of the per-dimension correlations.")

    def probe_settings(self, probe: str) -> str:
        for entry in ((self.inp.training or {}).get("models") or {}).values():
            if probe in entry and entry[probe].get("hyperparameters"):
                hp = entry[probe]["hyperparameters"]
                break
        else:
            section = getattr(self.cfg.probe_methods, probe, None)
            hp = section.model_dump() if section is not None else {}
        return _settings_text(hp) or "—"

    # results -------------------------------------------------------------------------------
    def results(self):
        w, ev = self.w, self.ev
        w.heading("4. Results")
        w.heading("4.1 Overall", 2)
        with_band = bool(self.baseline)
        rows = []
        for v, e in self.models.items():
            for p in probes_of(e):
                m = e[p]
                row = [v, p, num(m.get("val_mae")), num(m.get("overall_mae")), ci(m.get("mae_ci95")),
                       num(m.get("overall_rmse")), num(m.get("overall_spearman"))]
                rows.append(row + ([_band(ev, m.get("overall_mae")) or "—"] if with_band else []))
        mean = ev.get("mean_predictor") or {}
        if mean:
            rows.append(["train-mean predictor", "—", "—", num(mean.get("overall_mae")), ci(mean.get("mae_ci95")),
                         num(mean.get("overall_rmse")), num(mean.get("overall_spearman"))] + (["—"] if with_band else []))
        if self.baseline:
            base = ev.get("baseline") or {}
            rows.append(["fine-tuned baseline", "—", "—", num(self.baseline), ci(base.get("mae_ci95")),
                         num(base.get("overall_rmse")), num(base.get("overall_spearman")), "—"])
        header = ["Model", "Probe", "Val MAE", "Test MAE", "95% CI", "RMSE", "Spearman"] + (["Band"] if with_band else [])
        w.table(f"Overall scores on the {ev.get('n_test', '?')} test articles (evaluation JSON). Best on validation: "
                f"{self.label(self.best['model'], self.best['probe'])}."
                + (f" Fine-tuned baseline from {ev.get('baseline_source')}." if self.baseline else ""),
                header, rows, "llrrrrr" + ("l" if with_band else ""), font_pt=8)
        if not self.inp.comparison_figures:
            w.unavailable("Comparison charts", f"no results/figures/{self.inp.dataset}_*.png was found "
                          "(run compare_results.py).")
        self.place("cmp", ["mae_by_model"])

        w.heading("4.2 Per dimension", 2)
        dims = ev.get("dimension_names") or []
        rows = []
        for v, e in self.models.items():
            for p in probes_of(e):
                per = e[p].get("per_dimension") or {}
                rows.append([f"{v} + {p}"] + [num((per.get(d) or {}).get("mae")) for d in dims])
        for name, src in (("train-mean predictor", mean), ("fine-tuned baseline", ev.get("baseline") or {})):
            per = src.get("per_dimension")
            if per:
                rows.append([name] + [num((per.get(d) or {}).get("mae")) for d in dims])
        w.table("Test MAE per dimension.", ["Model + probe"] + dims, rows, "l" + "r" * len(dims),
                font_pt=8 if len(dims) <= 6 else 7)
        self.place("cmp", ["dimension_mae_heatmap"])

        w.heading("4.3 Per language", 2)
        langs = list(ev.get("language_counts") or {})
        variants = [v for v in self.models if self.chosen[v]]
        rows = []
        for lang in langs:
            row = [lang, str(ev["language_counts"][lang])]
            for v in variants:
                row.append(num(((self.models[v][self.chosen[v]].get("per_language") or {}).get(lang) or {}).get("mae")))
            rows.append(row)
        if rows:
            w.table("Test MAE per language, for each model's probe chosen on validation.",
                    ["Language", "n"] + [self.label(v, self.chosen[v]) for v in variants], rows,
                    "lr" + "r" * len(variants), font_pt=8)
            small = [f"{lang} (n={n})" for lang, n in ev["language_counts"].items() if n < SMALL_GROUP]
            if small:
                w.para(("Few test articles: ", "i"), (", ".join(small) + f" — fewer than {SMALL_GROUP}; their MAE is "
                                                     "a rough indication only.", "i"))
        else:
            w.unavailable("Per-language results", "the evaluation JSON holds no language_counts.")
        self.place("err", ["error_by_language"])
        if any(Path(p).resolve() not in w.embedded for p in self.inp.comparison_figures.values()):
            w.heading("4.4 Other comparison charts", 2)
            self.place("cmp")

    def error_analysis(self):
        w, errs = self.w, self.inp.errors
        w.heading("5. Error analysis")
        if not errs:
            w.unavailable("Error analysis", "no error summary was found "
                          f"({self.rel(input_paths(self.inp.results, self.inp.dataset)['errors'])}); "
                          "run analyze_error_distribution.py.")
            return
        models = errs.get("models") or {}
        w.para(f"Test errors of the {errs.get('probe', '?')} probe of each model (error summary JSON).")
        rows = []
        for v, m in models.items():
            q = m.get("abs_error_quantiles") or {}
            rows.append([v, str(m.get("n", "—")), num(m.get("overall_mae")), signed(m.get("bias")),
                         num(q.get("p50")), num(q.get("p90")), num(q.get("p99"))])
        w.table(f"Error distribution per model ({errs.get('probe', '?')} probe); bias is the mean of prediction − truth.",
                ["Model", "n", "MAE", "Bias", "|error| p50", "|error| p90", "|error| p99"], rows, "lrrrrrr")
        bins = list(dict.fromkeys((b.get("low"), b.get("high")) for m in models.values() for b in m.get("score_bins") or []))
        if bins:
            rows = []
            for low, high in bins:
                row = [f"{num(low, 1)}–{num(high, 1)}"]
                for m in models.values():
                    hit = next((b for b in m.get("score_bins") or [] if (b.get("low"), b.get("high")) == (low, high)), {})
                    row += [str(hit.get("n", "—")), signed(hit.get("bias"))]
                rows.append(row)
            w.table("Bias per true-score bin: a positive bias at low scores and a negative one at high scores means "
                    "the probe pulls extreme scores toward the mean.",
                    ["True score"] + [h for v in models for h in (f"{v} n", f"{v} bias")], rows,
                    "l" + "rr" * len(models), font_pt=8 if len(models) <= 3 else 7)
        target = self.best["model"] if self.best["model"] in models else next(iter(models), None)
        worst = (models.get(target) or {}).get("worst") or []
        if worst:
            rows = [[str(a.get("id")), str(a.get("language", "")), _short(str(a.get("title", ""))), num(a.get("mae"))]
                    for a in worst[:WORST_SHOWN]]
            w.table(f"The {len(rows)} worst-scored test articles of {target} ({errs.get('probe', '?')} probe).",
                    ["Id", "Language", "Title", "MAE"], rows, "lllr", font_pt=8)
        if not self.error_figures():
            w.unavailable("Error-analysis figures", "the error summary lists no figures.")
        self.place("err")

    def limitations(self):
        w, ev = self.w, self.ev
        w.heading("6. Limitations")
        lo, hi = self.best["mae_ci95"]
        w.bullet(f"Test size: {ev.get('n_test', '?')} articles. The best model's 95% CI is {num(hi - lo)} MAE wide; "
                 "smaller differences between models are not resolved by this test set.")
        if self.baseline and not ev.get("baseline"):
            w.bullet(f"Baseline: the fine-tuned MAE {num(self.baseline)} comes from {ev.get('baseline_source')}; it was "
                     "not recomputed on these test articles, so the gap compares two separate measurements (give "
                     "evaluate.py --baseline-predictions for a paired comparison).")
        elif not self.baseline:
            w.bullet("Baseline: no fine-tuned MAE is known for this dataset, so no verdict band is given.")
        small = [lang for lang, n in (ev.get("language_counts") or {}).items() if n < SMALL_GROUP]
        if small:
            w.bullet(f"Languages with fewer than {SMALL_GROUP} test articles ({', '.join(small)}): their per-language MAE "
                     "is a rough indication only.")
        w.bullet("Truncation: comparing truncated with whole articles is observational (long articles differ in other "
                 "ways); only a max-tokens sweep of one model isolates the effect.")
        for v in self.models:
            spec = self.cfg.embedding_models.get(base_model(self.cfg, v)[0])
            if spec and spec.note and any(k in spec.note.lower() for k in ("english", "stand-in")):
                w.bullet(f"{v}: {spec.note}. Its results say nothing about multilingual quality.")
        edge = [v for v, e in self.models.items()
                if ((e.get("ridge") or {}).get("selected") or {}).get("alpha_at_grid_edge")]
        if edge:
            w.bullet("Ridge: the alpha chosen for " + ", ".join(edge) + " sits at the edge of the grid; a wider "
                     "probe_methods.ridge.alphas might do better.")
        bench = self.inp.benchmarks
        if bench:
            w.bullet(f"Speed was measured once on {bench.get('device_name') or bench.get('device', '?')}; other hardware, "
                     "batch sizes or dtypes give other figures."
                     + (" Some models ran with random weights (speed only)." if any(
                         b.get("random_weights") for b in (bench.get("models") or {}).values()) else ""))
        w.bullet(f"One seed ({ev.get('random_seed', self.cfg.random_seed)}) and one validation split choose every "
                 "hyper-parameter; the variance across seeds is not measured.")

    def appendix(self):
        w, tr = self.w, self.inp.training
        w.heading("Appendix")
        w.heading("A. Configuration", 2)
        cfg = self.cfg.model_dump()
        used = {base_model(self.cfg, v)[0] for v in self.models}
        shown = {k: cfg[k] for k in ("random_seed", "device", "batch_size", "score_range", "bootstrap_samples",
                                     "success_bands", "fine_tuned_ms_per_article")}
        shown["embedding_models"] = {k: v for k, v in cfg["embedding_models"].items() if k in used}
        if self.inp.dataset in cfg["datasets"]:
            shown["datasets"] = {self.inp.dataset: cfg["datasets"][self.inp.dataset]}
        shown["probe_methods"] = cfg["probe_methods"]
        w.para(f"The settings of config.yaml ({self.cfg.root}) that concern this report, as read when it was generated:")
        w.code(yaml.safe_dump(_plain(shown), sort_keys=False, allow_unicode=True, default_flow_style=None, width=88).rstrip())
        w.heading("B. Library versions", 2)
        versions = (self.inp.benchmarks or {}).get("versions")
        if versions:
            source = "as recorded by benchmark_speed.py"
        else:
            versions = {"python": platform.python_version()}
            for lib in LIBRARIES:
                try:
                    versions[lib] = importlib.metadata.version(lib)
                except importlib.metadata.PackageNotFoundError:
                    versions[lib] = "not installed"
            source = "installed where this report was generated (no benchmark run recorded them)"
        w.table(f"Library versions, {source}.", ["Library", "Version"],
                [[k, str(v)] for k, v in versions.items()], "ll")
        w.heading("C. Cache fingerprints and probe files", 2)
        trained = (tr or {}).get("models") or {}
        if not trained:
            w.unavailable("Fingerprints", "no training summary was found (run train_probes.py).")
        else:
            rows, files = [], []
            for v, entry in trained.items():
                fp = next((m.get("embedding_fingerprint") for m in entry.values() if m.get("embedding_fingerprint")), {})
                rows.append([v, str(fp.get("model_name", "—")), str(fp.get("max_tokens", "—")), repr(fp.get("prefix", "")),
                             str(fp.get("dtype", "—")), str(fp.get("pooling", "—")), str(fp.get("data_sha256", "—"))[:16]])
                files += [[v, p, str(m.get("file", "—")), str(m.get("sha256", "—"))[:16]] for p, m in entry.items()]
            w.table("Fingerprints of the training embeddings each probe was fitted on (training summary).",
                    ["Model", "Model name", "Max tokens", "Prefix", "Dtype", "Pooling", "Data sha256"], rows, "llrllll",
                    font_pt=7)
            w.table("Probe files and their sha256 (first 16 hex digits).", ["Model", "Probe", "File", "sha256"], files,
                    "llll", font_pt=7)
        w.heading("D. Input files", 2)
        rows = [[key, self.rel(path), _sha(path)] for key, path in self.inp.files.items()]
        rows += [["figure", self.rel(p), _sha(p)] for p in sorted(self.w.embedded)]
        if self.inp.comparison_report:
            rows.append(["comparison report", self.rel(self.inp.comparison_report), _sha(self.inp.comparison_report)])
        w.table("Every file this report was built from (sha256, first 12 hex digits).", ["Input", "Path", "sha256"], rows,
                "lll", font_pt=7)


def _settings_text(settings: dict) -> str:
    """'key value, ...' with nested mappings flattened: 'params: n_estimators 1000, ...'."""
    parts = []
    for key, value in settings.items():
        if isinstance(value, dict):
            parts.append(f"{key}: " + _settings_text(value))
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key} " + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value))
        else:
            parts.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return "; ".join(parts)


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if Path(path).is_file() else "—"


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_report(cfg: Config, dataset: str, out: Path) -> dict:
    """Build the report of `dataset` into `out` (.docx, written atomically); returns what went in."""
    return Report(cfg, load_inputs(cfg, dataset), out).build()
