"""The document model of the study's reports: blocks, recorded once, rendered to Word or markdown.

A report's sections (study/report.py) write headings, paragraphs, captioned tables and figures
into a `Document`; `to_docx` lays the same blocks out with study/docx_writer.py and
`to_markdown` writes them as the comparison markdown. A table is one spec (caption, header,
rows of formatted cells, alignment), so both files show the same numbers in the same cells,
numbered the same way. Number formatting is study/formats.py.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from PIL import Image, UnidentifiedImageError

from study.formats import MISSING as EMPTY   # a cell with no value
from study.artifacts import current

Part = Union[str, tuple]   # plain text, or (text, "b" | "i" | "bi")


@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Para:
    parts: tuple
    bullet: bool = False


@dataclass
class Unavailable:
    what: str
    why: str


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    align: str              # 'l' / 'r' / 'c' per column
    font_pt: float = 9
    flows: bool = False     # may start where it is and go on over the page (its header repeated); else a short
                            # table is kept on one page, moving whole to the next when it does not fit


@dataclass
class Figure:
    path: Path
    caption: str
    width_cm: float | None = None   # None: the layout's full figure width


@dataclass
class Code:
    text: str


@dataclass
class PageBreak:
    pass


@dataclass
class Contents:
    pass


Block = Union[Heading, Para, Unavailable, Table, Figure, Code, PageBreak, Contents]


@dataclass
class Document:
    """What a report's sections write into; the blocks in order, nothing laid out yet."""
    title: str
    subtitle: str
    blocks: list = field(default_factory=list)
    embedded: set = field(default_factory=set)     # resolved figure paths already placed
    missing: list = field(default_factory=list)    # what each `unavailable` note named
    comments: str = ""                              # the Word file's properties comment

    @property
    def tables(self) -> int:
        return sum(isinstance(b, Table) for b in self.blocks)

    @property
    def figures(self) -> int:
        return sum(isinstance(b, Figure) for b in self.blocks)

    @property
    def sections(self) -> tuple[str, ...]:
        """Its top-level headings in order, 'Contents' where the list of sections stands."""
        return tuple("Contents" if isinstance(b, Contents) else b.text for b in self.blocks
                     if isinstance(b, Contents) or isinstance(b, Heading) and b.level == 1)

    def heading(self, text: str, level: int = 1):
        self.blocks.append(Heading(text, level))

    def para(self, *parts: Part):
        self.blocks.append(Para(parts))

    def bullet(self, *parts: Part):
        self.blocks.append(Para(parts, bullet=True))

    def unavailable(self, what: str, why: str):
        """The note a section prints when its input is missing."""
        self.missing.append(what)
        self.blocks.append(Unavailable(what, why))

    def table(self, caption: str, header: list[str], rows: list[list[str]], align: str, font_pt: float = 9,
              empty_why: dict[str, str] | None = None, flows: bool = False):
        """A captioned table. A column empty in every row (each cell blank or MISSING) is left out, and the caption
        says so in one sentence, with `empty_why[column]` as the reason where given."""
        if len(align) != len(header) or any(len(r) != len(header) for r in rows):
            raise ValueError(f"table {caption[:40]!r}: header, alignment and rows differ in width")
        rows = [[str(c) for c in r] for r in rows]
        empty = [i for i in range(len(header)) if rows and all(r[i].strip() in ("", EMPTY) for r in rows)]
        if empty:
            why = empty_why or {}
            caption += " Left out, empty in every row: " + "; ".join(
                header[i] + (f" ({why[header[i]]})" if header[i] in why else "") for i in empty) + "."
            keep = [i for i in range(len(header)) if i not in empty]
            header, align = [header[i] for i in keep], "".join(align[i] for i in keep)
            rows = [[r[i] for i in keep] for r in rows]
        self.blocks.append(Table(caption, list(header), rows, align, font_pt, flows))

    def figure(self, path, caption: str, width_cm: float | None = None) -> bool:
        """Place a png once; a missing or unreadable file becomes an `unavailable` note instead."""
        path = Path(path)
        if path.resolve() in self.embedded:
            return True
        found = current(path)   # a chart drawn in this command's staged_writes block is read from its staged file
        if not found.is_file():
            self.unavailable(f"Figure {path.name}", f"{path} was not found")
            return False
        try:
            with Image.open(found) as im:
                im.verify()
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            self.unavailable(f"Figure {path.name}", f"{path} could not be read ({exc})")
            return False
        self.embedded.add(path.resolve())
        self.blocks.append(Figure(path, caption, width_cm))
        return True

    def code(self, text: str):
        self.blocks.append(Code(text))

    def page_break(self):
        self.blocks.append(PageBreak())

    def contents_here(self):
        self.blocks.append(Contents())


def to_docx(document: Document, out: Path):
    """Lay the blocks out in Word (study/docx_writer.py) and save `out` atomically; returns the Writer."""
    from study.docx_writer import Writer

    w = Writer(document.title, document.subtitle)
    for b in document.blocks:
        if isinstance(b, Heading):
            w.heading(b.text, b.level)
        elif isinstance(b, Para):
            (w.bullet if b.bullet else w.para)(*b.parts)
        elif isinstance(b, Unavailable):
            w.unavailable(b.what, b.why)
        elif isinstance(b, Table):
            w.table(b.caption, b.header, b.rows, b.align, b.font_pt, b.flows)
        elif isinstance(b, Figure):
            w.figure(b.path, b.caption, b.width_cm)
        elif isinstance(b, Code):
            w.code(b.text)
        elif isinstance(b, PageBreak):
            w.page_break()
        elif isinstance(b, Contents):
            w.contents_here()
    if document.comments:
        w.doc.core_properties.comments = document.comments
    w.save(out)
    return w


def _md_text(parts) -> str:
    out = []
    for part in parts:
        text, fmt = part if isinstance(part, tuple) else (part, "")
        text = str(text)
        stripped = text.strip()
        if fmt and stripped:   # markdown emphasis must hug the text: keep the outer spaces outside it
            mark = ("**" if "b" in fmt else "") + ("*" if "i" in fmt else "")
            lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
            text = f"{lead}{mark}{stripped}{mark[::-1]}{trail}"
        out.append(text)
    return _TAG.sub("&lt;", "".join(out))


_TAG = re.compile(r"<(?=[A-Za-z/!?])")     # what would open raw HTML (<script>, </b>, <!--): shown, never run
_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")


def _md_line(text) -> str:
    """A name or caption as one markdown line: line breaks as spaces, HTML tags as text."""
    return _TAG.sub("&lt;", _BREAKS.sub(" ", str(text)))


def _md_cell(text: str) -> str:
    return _md_line(text).replace("|", "\\|")


def to_markdown(document: Document, folder: Path) -> str:
    """The blocks as markdown; figure links relative to `folder` (where the markdown file is written)."""
    lines = [f"# {_md_line(document.title)}", "", f"*{_md_line(document.subtitle)}*", ""]
    tables = figures = 0
    for b in document.blocks:
        if isinstance(b, Para) and b.bullet:   # bullets run together; the block after the last one opens with ""
            lines.append("- " + _md_text(b.parts))
            continue
        if lines[-1]:
            lines.append("")
        if isinstance(b, Heading):
            lines += ["#" * (b.level + 1) + " " + _md_line(b.text), ""]
        elif isinstance(b, Para):
            lines += [_md_text(b.parts), ""]
        elif isinstance(b, Unavailable):
            lines += [f"**{_md_line(b.what)} unavailable:** *{_md_line(b.why)}*", ""]
        elif isinstance(b, Table):
            tables += 1
            rule = [{"l": "---", "r": "---:", "c": ":---:"}[a] for a in b.align]
            lines += [f"**Table {tables}.** {_md_line(b.caption)}", "",
                      "| " + " | ".join(_md_cell(h) for h in b.header) + " |", "| " + " | ".join(rule) + " |"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Figure):
            figures += 1
            rel = Path(os.path.relpath(Path(b.path).resolve(), Path(folder).resolve())).as_posix()
            caption = _md_line(b.caption)
            lines += [f"![Figure {figures}. {caption}]({rel})", "", f"**Figure {figures}.** {caption}", ""]
        elif isinstance(b, Code):
            lines += ["```", b.text, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
