"""The layout engine of the Word report: a thin layer over python-docx.

`Writer` knows headings, paragraphs, captioned tables (column widths from their text, header
row repeated on each page) and captioned figures; study/document.py replays a report's blocks
onto it. Number formatting is study/formats.py. Nothing here knows the study.
"""
from __future__ import annotations

import functools
import io
import re
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.image.exceptions import UnrecognizedImageError
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from PIL import Image, UnidentifiedImageError

from study.artifacts import atomic_path

FIGURE_WIDTH_CM = 15.5
FIGURE_MAX_HEIGHT_CM = 11.0
TEXT_WIDTH_CM = 16.6    # A4 minus the margins set in Writer
WIDE_TABLE_CM = 19.0    # a table whose words cannot fit the text width may reach this far into both margins
KEEP_TOGETHER_ROWS = 20  # tables up to this many rows are not split across pages
HEADER_FILL = "D9E2F3"
CELL_PADDING_CM = 0.45  # a cell's left and right margins (Word's default 0.19 cm each) and a little slack
WRAP_CHARS = {"header": 12, "value": 28}   # a cell's text may wrap at its spaces beyond about this many characters
BREAK_AFTER = "\u200b"   # a zero-width space: where a header may break when a whole word does not fit


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text) -> str:
    """`text` without the control characters Word documents cannot hold (they come from input data)."""
    return _NOT_XML.sub("", str(text))


@functools.cache
def _font(bold: bool):
    """DejaVu Sans (shipped with matplotlib; what LibreOffice draws for Calibri where Calibri is missing, and wider
    than Calibri, so a width that holds it holds Calibri too), measured at 1000 px; None where it cannot be read."""
    try:
        from matplotlib import font_manager
        from PIL import ImageFont

        path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans",
                                                                 weight="bold" if bold else "normal"))
        return ImageFont.truetype(path, 1000)
    except (ImportError, OSError, ValueError):
        return None


def text_cm(text: str, font_pt: float, bold: bool = False) -> float:
    """The printed width of `text` on one line at `font_pt` (an estimate of 0.67 em a character without the font)."""
    font = _font(bold)
    em = font.getlength(text) / 1000 if font else 0.67 * len(text) * (1.1 if bold else 1.0)
    return em * font_pt * 2.54 / 72


def _pieces(text: str, at_underscores: bool = False) -> list[str]:
    """The parts of `text` a line may not break inside: its words, or (`at_underscores`) the parts of a word after
    each '_' too."""
    words = str(text).split()
    return [p for w in words for p in (re.split(r"(?<=_)", w) if at_underscores else [w]) if p] or [""]


def _field(paragraph, code: str) -> None:
    """A Word field (PAGE, NUMPAGES) in `paragraph`: the viewer fills in its value."""
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, code), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        elif text == code:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = f" {code} "
        else:
            el = OxmlElement("w:t")
            el.text = text
        run._r.append(el)


def column_widths(header: list[str], rows: list[list[str]], font_pt: float,
                  text_width_cm: float = TEXT_WIDTH_CM) -> tuple[list[float], set[int]]:
    """(width of each column in cm, the columns whose header must break after its underscores).

    A column's floor is its longest unbreakable piece: a header word in bold, a value's word. Columns start at the
    width of their text (a header up to about `WRAP_CHARS` characters, a value up to more); when the table is wider
    than the page the widest are narrowed first, never below their floor. When the floors alone do not fit, the
    headers with underscores may break after them (their floor is then the longest part); when even that does not
    fit, the table keeps its floors and reaches into the margins (centred, up to `WIDE_TABLE_CM`); only beyond that
    are all columns narrowed in proportion, the one case where a word can break."""
    cells = [[str(v) for v in header], *[[str(v) for v in row] for row in rows]]
    n = len(header)

    def widest(c: int, header_parts: bool) -> float:
        head = max(text_cm(p, font_pt, bold=True) for p in _pieces(cells[0][c], at_underscores=header_parts))
        return max([head] + [text_cm(p, font_pt) for row in cells[1:] for p in _pieces(row[c])]) + CELL_PADDING_CM

    def natural(c: int) -> float:
        wrap = {k: text_cm("n" * v, font_pt) for k, v in WRAP_CHARS.items()}
        head = min(text_cm(cells[0][c], font_pt, bold=True), wrap["header"])
        body = [min(text_cm(row[c], font_pt), wrap["value"]) for row in cells[1:]]
        return max([head, *body]) + CELL_PADDING_CM

    floors = [widest(c, False) for c in range(n)]
    split: set[int] = set()
    if sum(floors) > text_width_cm:   # let the headers break after their underscores, widest first
        for c in sorted(range(n), key=lambda c: -floors[c]):
            if "_" in cells[0][c] and sum(floors) > text_width_cm:
                floors[c] = widest(c, True)
                split.add(c)
    if sum(floors) > text_width_cm:   # into the margins; beyond that, every column in proportion
        return [f * min(1.0, WIDE_TABLE_CM / sum(floors)) for f in floors], split
    wanted = [max(natural(c), floors[c]) for c in range(n)]
    if sum(wanted) <= text_width_cm:
        return wanted, split
    lo, hi = 0.0, max(wanted)   # the widest columns give way first: a cap on every column, above its floor
    for _ in range(40):
        cap = (lo + hi) / 2
        lo, hi = (cap, hi) if sum(max(f, min(w, cap)) for f, w in zip(floors, wanted)) <= text_width_cm else (lo, cap)
    return [max(f, min(w, lo)) for f, w in zip(floors, wanted)], split


class Writer:
    """A thin layer over python-docx: numbered headings, captioned tables and figures."""

    def __init__(self, title: str, subtitle: str):
        title, subtitle = xml_safe(title), xml_safe(subtitle)
        self.doc = Document()
        self.tables = self.figures = 0
        self.missing: list[str] = []
        section = self.doc.sections[0]
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Cm(2.2))
        section.top_margin = section.bottom_margin = Cm(2.0)
        self._style_ids = {style.name: style.style_id for style in self.doc.styles}   # python-docx looks a name
        normal = self.doc.styles["Normal"]                                          # up anew at each use
        normal.font.name, normal.font.size = "Calibri", Pt(10.5)
        normal.paragraph_format.space_after = Pt(4)
        self.doc.core_properties.title = title
        self._paragraph("Title", xml_safe(title))
        self._paragraph("Subtitle", xml_safe(subtitle))
        footer = section.footer.paragraphs[0]
        footer.text = f"{title} · page "
        _field(footer, "PAGE")
        footer.add_run(" of ")
        _field(footer, "NUMPAGES")
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self._contents = None

    def _paragraph(self, style: str | None = None, text: str = ""):
        """`doc.add_paragraph(text, style)`, with the style's id found once per document, not at every paragraph."""
        p = self.doc.add_paragraph(text)
        if style is not None:
            p._p.style = self._style_ids[style]
        return p

    def heading(self, text: str, level: int = 1):
        self._paragraph(f"Heading {level}", xml_safe(text))

    def para(self, *parts, style: str | None = None):
        """A paragraph of plain strings and (text, "b"|"i") runs."""
        p = self._paragraph(style)
        for part in parts:
            text, fmt = part if isinstance(part, tuple) else (part, "")
            run = p.add_run(xml_safe(text))
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

    def table(self, caption: str, header: list[str], rows: list[list[str]], align: str, font_pt: float = 9,
              flows: bool = False):
        """A captioned table: shaded header row repeated on each page; align 'l'/'r'/'c' per column. Columns are
        as wide as their longest word (header in bold), so no word is broken; a header word that cannot get its
        width breaks after an underscore ('workflow_' / 'detail'), never inside a word. A table of up to
        KEEP_TOGETHER_ROWS rows is kept on one page unless it `flows` (page 1's questions: they start on page 1
        whatever precedes them); no row is split across pages."""
        self.tables += 1
        cap = self._paragraph("Caption")
        cap.add_run(f"Table {self.tables}. ").bold = True
        cap.add_run(xml_safe(caption))
        cap.paragraph_format.keep_with_next = True
        widths, split_headers = column_widths(header, rows, font_pt)
        table = self.doc.add_table(rows=1 + len(rows), cols=len(header))
        table._tbl.tblPr.style = self._style_ids["Table Grid"]
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        where = {"l": WD_ALIGN_PARAGRAPH.LEFT, "r": WD_ALIGN_PARAGRAPH.RIGHT, "c": WD_ALIGN_PARAGRAPH.CENTER}
        cells = [row.cells for row in table.rows]   # each `.cells` walks the row's XML again
        for r, values in enumerate([header, *rows]):
            for c, value in enumerate(values):
                cell = cells[r][c]
                p = cell.paragraphs[0]
                p.paragraph_format.space_after = Pt(0)
                p.alignment = where["l" if r == 0 and align[c] == "l" else align[c]]
                text = xml_safe(value)
                if r == 0 and c in split_headers:
                    text = text.replace("_", "_" + BREAK_AFTER)
                run = p.add_run(text)
                run.font.size = Pt(font_pt)
                if r == 0:
                    run.bold = True
                    shading = OxmlElement("w:shd")
                    shading.set(qn("w:val"), "clear")
                    shading.set(qn("w:color"), "auto")
                    shading.set(qn("w:fill"), HEADER_FILL)
                    cell._tc.get_or_add_tcPr().append(shading)
        table.autofit = False   # Word and LibreOffice both honour explicit widths
        grid = table._tbl.tblGrid.findall(qn("w:gridCol"))
        for c, width in enumerate(widths):
            grid[c].set(qn("w:w"), str(int(Cm(width).twips)))
            for row in cells:
                row[c].width = Cm(width)
        for row in table.rows:
            row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
        if len(rows) <= KEEP_TOGETHER_ROWS and not flows:  # a short table stays on one page
            for row in cells[:-1]:
                for cell in row:
                    for p in cell.paragraphs:
                        p.paragraph_format.keep_with_next = True
        repeat = OxmlElement("w:tblHeader")
        repeat.set(qn("w:val"), "true")
        table.rows[0]._tr.get_or_add_trPr().append(repeat)
        self.doc.add_paragraph().paragraph_format.space_after = Pt(2)
        return table

    def figure(self, path: Path, caption: str, width_cm: float | None = None) -> bool:
        """A centred png with its caption, `width_cm` wide (default the full figure width), never taller than
        the page allows."""
        path = Path(path)   # study/document.py placed it once and found it; docx may still refuse its bytes
        try:
            with Image.open(path) as im:
                aspect = im.height / im.width
            width = width_cm or FIGURE_WIDTH_CM
            size = ({"height": Cm(FIGURE_MAX_HEIGHT_CM)} if width * aspect > FIGURE_MAX_HEIGHT_CM
                    else {"width": Cm(width)})
            self.doc.add_picture(str(path), **size)
        except (UnrecognizedImageError, UnidentifiedImageError, OSError, ValueError) as exc:
            self.unavailable(f"Figure {path.name}", f"{path} could not be read ({exc})")
            return False
        self.doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        self.doc.paragraphs[-1].paragraph_format.keep_with_next = True
        self.figures += 1
        cap = self._paragraph("Caption")
        cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
        cap.add_run(f"Figure {self.figures}. ").bold = True
        cap.add_run(xml_safe(caption))
        return True

    def code(self, text: str):
        p = self.doc.add_paragraph()
        p.paragraph_format.space_after = Pt(0)
        run = p.add_run(xml_safe(text))
        run.font.name, run.font.size = "Courier New", Pt(7.5)

    def page_break(self):
        self.doc.add_page_break()

    def contents_here(self):
        """Mark where the list of sections goes; it is filled from the headings when the document is saved."""
        self.heading("Contents", 1)
        self._contents = self.doc.add_paragraph()

    def _fill_contents(self):
        """One line a heading of the main text; the annex's sections on one line after 'Annex' (the contents
        must leave room on its page for the first results)."""
        if self._contents is None:
            return
        h1, h2 = self._style_ids["Heading 1"], self._style_ids["Heading 2"]
        heads = [p for p in self.doc.paragraphs if p._p.style in (h1, h2)
                 and p.text != "Contents" and p._p is not self._contents._p and p._p.getparent() is not None]
        lines, annex = [], None
        for h in heads:
            if h._p.style == h1:
                annex = [] if h.text == "Annex" else None
                lines.append([h.text, annex])
            elif annex is not None:
                annex.append(h.text)
            else:
                lines.append(["    " + h.text, None])
        block = self._contents.insert_paragraph_before()   # one paragraph, a line a heading, kept whole: on page 1,
        block.paragraph_format.keep_together = True         # or all of it on the next page, never a last line alone
        for i, (text, parts) in enumerate(lines):
            run = block.add_run(text + (": " + " · ".join(parts) if parts else ""))
            if i < len(lines) - 1:
                run.add_break()
        self._contents._p.getparent().remove(self._contents._p)
        self._contents = None

    def save(self, out: Path):
        """Built in memory first, so a full disk is one OSError (not a zipfile left open, whose __del__ then
        prints a traceback of its own)."""
        self._fill_contents()
        buffer = io.BytesIO()
        self.doc.save(buffer)
        with atomic_path(out, "wb") as fh:
            fh.write(buffer.getbuffer())


