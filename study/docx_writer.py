"""The layout engine of the Word report: a thin layer over python-docx.

`Writer` knows headings, paragraphs, captioned tables (column widths from their text, header
row repeated on each page) and captioned figures; study/document.py replays a report's blocks
onto it. Number formatting is study/formats.py. Nothing here knows the study.
"""
from __future__ import annotations

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
KEEP_TOGETHER_ROWS = 20  # tables up to this many rows are not split across pages
HEADER_FILL = "D9E2F3"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text) -> str:
    """`text` without the control characters Word documents cannot hold (they come from input data)."""
    return _NOT_XML.sub("", str(text))


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
        normal = self.doc.styles["Normal"]
        normal.font.name, normal.font.size = "Calibri", Pt(10.5)
        normal.paragraph_format.space_after = Pt(4)
        self.doc.core_properties.title = title
        self.doc.add_paragraph(xml_safe(title), style="Title")
        self.doc.add_paragraph(xml_safe(subtitle), style="Subtitle")
        footer = section.footer.paragraphs[0]
        footer.text = f"{title} · page "
        _field(footer, "PAGE")
        footer.add_run(" of ")
        _field(footer, "NUMPAGES")
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        self._contents = None

    def heading(self, text: str, level: int = 1):
        self.doc.add_heading(xml_safe(text), level=level)

    def para(self, *parts, style: str | None = None):
        """A paragraph of plain strings and (text, "b"|"i") runs."""
        p = self.doc.add_paragraph(style=style)
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

    def table(self, caption: str, header: list[str], rows: list[list[str]], align: str, font_pt: float = 9):
        """A captioned table: shaded header row repeated on each page; align 'l'/'r'/'c' per column."""
        self.tables += 1
        cap = self.doc.add_paragraph(style="Caption")
        cap.add_run(f"Table {self.tables}. ").bold = True
        cap.add_run(xml_safe(caption))
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
                run = p.add_run(xml_safe(value))
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
        cap = self.doc.add_paragraph(style="Caption")
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
        self.doc.add_heading("Contents", level=1)
        self._contents = self.doc.add_paragraph()

    def _fill_contents(self):
        """One line a heading of the main text; the annex's sections on one line after 'Annex' (the contents
        must leave room on its page for the first results)."""
        if self._contents is None:
            return
        heads = [p for p in self.doc.paragraphs if p.style.name in ("Heading 1", "Heading 2")
                 and p.text != "Contents" and p._p is not self._contents._p and p._p.getparent() is not None]
        lines, annex = [], None
        for h in heads:
            if h.style.name == "Heading 1":
                annex = [] if h.text == "Annex" else None
                lines.append([h.text, annex])
            elif annex is not None:
                annex.append(h.text)
            else:
                lines.append(["    " + h.text, None])
        for text, parts in lines:
            line = self._contents.insert_paragraph_before(text + (": " + " · ".join(parts) if parts else ""))
            line.paragraph_format.space_after = Pt(0)
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


