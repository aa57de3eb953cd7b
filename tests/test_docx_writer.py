"""The report's table layout (study/docx_writer.py): no header or value broken inside a word.

Widths are read back from the saved document's XML (w:gridCol, in twips) and set against each word's printed
width measured here independently: DejaVu Sans (matplotlib's copy), the font LibreOffice draws for Calibri on a
machine without it and wider than Calibri.
"""
from __future__ import annotations

import docx
import pytest
from docx.oxml.ns import qn
from matplotlib import font_manager
from PIL import ImageFont

from study.docx_writer import BREAK_AFTER, CELL_PADDING_CM, TEXT_WIDTH_CM, WIDE_TABLE_CM, Writer

TWIPS_PER_CM = 1440 / 2.54


def printed_cm(text: str, font_pt: float, bold: bool) -> float:
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, 1000).getlength(text) / 1000 * font_pt / 72 * 2.54


def saved_table(tmp_path, header, rows, font_pt=9.0):
    w = Writer("t", "s")
    w.table("caption", header, rows, "l" + "r" * (len(header) - 1), font_pt=font_pt)
    w.save(tmp_path / "t.docx")
    table = docx.Document(tmp_path / "t.docx").tables[0]
    widths = [int(g.get(qn("w:w"))) / TWIPS_PER_CM for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]
    return table, widths


DIMS = ["workflow_detail", "evidence_quality", "tooling_specificity", "reproducibility", "practical_value"]


def test_each_column_is_as_wide_as_its_longest_header_word_and_value(tmp_path):
    header = ["Model + probe", *DIMS[:3]]   # room for every header word whole
    rows = [["multilingual-MiniLM-L12-v2 + lightgbm", *["0.812"] * 3], ["bge-m3 + ridge", *["1.004"] * 3]]
    table, widths = saved_table(tmp_path, header, rows)
    assert sum(widths) <= TEXT_WIDTH_CM + 0.01
    for c, name in enumerate(header):
        longest = max(printed_cm(word, 9, bold=True) for word in name.split())
        assert widths[c] >= longest + CELL_PADDING_CM - 0.01, name   # the header word fits on one line
        assert table.rows[0].cells[c].text == name                   # whole: no break marks needed
    assert widths[0] >= printed_cm("multilingual-MiniLM-L12-v2", 9, bold=False) + CELL_PADDING_CM - 0.01


def test_headers_that_cannot_fit_whole_break_after_an_underscore_not_inside_a_word(tmp_path):
    header = ["Model + probe", *DIMS]   # five long names: no room for every one whole
    rows = [["multilingual-MiniLM-L12-v2 + lightgbm", *["0.812"] * len(DIMS)]]
    table, widths = saved_table(tmp_path, header, rows)
    whole = sum(max(printed_cm(n, 9, True), printed_cm("0.812", 9, False)) + CELL_PADDING_CM for n in DIMS) \
        + printed_cm("multilingual-MiniLM-L12-v2", 9, False) + CELL_PADDING_CM
    assert whole > TEXT_WIDTH_CM   # the case this test is about
    assert sum(widths) <= WIDE_TABLE_CM + 0.01   # at most a little into the margins
    split = 0
    for c, name in enumerate(header):
        text = table.rows[0].cells[c].text
        assert text.replace(BREAK_AFTER, "") == name   # the words as written, with break marks only
        parts = text.split(BREAK_AFTER)
        split += len(parts) > 1
        assert all(p.endswith("_") for p in parts[:-1])   # a break only right after an underscore
        assert widths[c] >= max(printed_cm(w, 9, True) for p in parts for w in p.split()) + CELL_PADDING_CM - 0.01, name
    assert split   # some header had to break
    assert widths[0] >= printed_cm("multilingual-MiniLM-L12-v2", 9, False) + CELL_PADDING_CM - 0.01


def test_a_timestamp_or_long_value_keeps_its_line_while_long_text_wraps_at_spaces(tmp_path):
    stamp = "2026-12-01T11:37:14+00:00"
    title = "A long article title that wraps at its spaces when the page is too narrow for it " * 2
    _, widths = saved_table(tmp_path, ["Created", "Title", "Host", "Device"], [[stamp, title, "gpu-server-01", "cuda:0"]])
    assert widths[0] >= printed_cm(stamp, 9, False) + CELL_PADDING_CM - 0.01
    assert widths[1] < printed_cm(title, 9, False)   # the title wraps (at its spaces) ...
    assert sum(widths) <= TEXT_WIDTH_CM + 0.01       # ... so that the table fits the page


@pytest.mark.parametrize("font_pt", [8, 10.5])
def test_widths_follow_the_tables_font_size(tmp_path, font_pt):
    _, widths = saved_table(tmp_path, ["tooling_specificity", "n"], [["0.5", "12"]], font_pt=font_pt)
    assert widths[0] >= printed_cm("tooling_specificity", font_pt, True) + CELL_PADDING_CM - 0.01


def test_a_short_table_is_kept_on_one_page_unless_it_flows_and_no_row_is_split(tmp_path):
    """A short table moves whole to the next page when it does not fit (keep-with-next on every row but the last);
    one that `flows` (page 1's questions) starts where it stands and goes on over the page. Neither splits a row."""
    w = Writer("t", "s")
    rows = [[f"question {i}", "answer"] for i in range(6)]
    w.table("kept", ["Q", "A"], rows, "ll")
    w.table("flowing", ["Q", "A"], rows, "ll", flows=True)
    w.save(tmp_path / "t.docx")
    kept, flowing = docx.Document(tmp_path / "t.docx").tables

    def kept_with_next(table):
        return [all(p.paragraph_format.keep_with_next for c in row.cells for p in c.paragraphs) for row in table.rows]

    assert kept_with_next(kept) == [True] * 6 + [False]
    assert kept_with_next(flowing) == [False] * 7
    for table in (kept, flowing):
        assert all(row._tr.trPr.find(qn("w:cantSplit")) is not None for row in table.rows)
        assert table.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None   # the header repeats on the next page



def test_the_contents_are_one_paragraph_kept_whole(tmp_path):
    """The contents list is one paragraph, a line a heading (the annex's sections on its line), kept together: on
    page 1 whole or whole on the next page. As a paragraph a line, LibreOffice broke their keep-with-next chain and
    left the list's last line alone on page 2 of the yes/no demo's report."""
    w = Writer("t", "s")
    w.contents_here()
    w.heading("1. First", 1)
    w.heading("1.1 Second", 2)
    w.heading("Annex", 1)
    w.heading("A. Method", 2)
    w.heading("B. Details", 2)
    w.save(tmp_path / "t.docx")
    doc = docx.Document(tmp_path / "t.docx")
    i = next(k for k, p in enumerate(doc.paragraphs) if p.text == "Contents")
    block = doc.paragraphs[i + 1]
    assert block.text.split("\n") == ["1. First", "    1.1 Second", "Annex: A. Method · B. Details"]
    assert block.paragraph_format.keep_together
    assert doc.paragraphs[i].style.paragraph_format.keep_with_next   # the heading goes with it
    assert doc.paragraphs[i + 2].text == "1. First"
