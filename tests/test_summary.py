"""The cross-dataset summary's markdown (study/summary.py): every row as wide as its header, the values where
the header says."""
from study.summary import summary_markdown

SUMMARY = {
    "datasets": [{"dataset": "news", "n_test": 120, "model": "bge-m3", "probe": "ridge", "test_mae": 0.7512,
                  "mae_ci95": [0.70, 0.80], "baseline_mae": 0.68, "band": "partial"},
                 {"dataset": "blogs", "n_test": 50, "model": "multilingual-e5-large", "probe": "mlp", "test_mae": 1.2,
                  "mae_ci95": [1.1, 1.3], "baseline_mae": None, "band": None}],
    "models": {"bge-m3": {"news": {"probe": "ridge", "mae": 0.7512}},
               "multilingual-e5-large": {"news": {"probe": "mlp", "mae": 0.8}, "blogs": {"probe": "mlp", "mae": 1.2}}},
    "yes_no": [{"dataset": "yes_no", "n_test": 40, "model": "bge-m3", "probe": "logistic", "threshold": 0.42,
                "test_f1": 0.81, "f1_ci95": [0.7, 0.9], "test_roc_auc": 0.93, "baseline_f1": None}],
}


def tables(md: str) -> list[list[list[str]]]:
    """Each markdown table as rows of cells (the alignment row included)."""
    out, current = [], None
    for line in md.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                out.append(current)
            current.append([c.strip() for c in line.strip("|").split("|")])
        else:
            current = None
    return out


def test_each_table_row_has_its_headers_cells_with_the_values_under_their_header():
    md = summary_markdown(SUMMARY, "figures/summary_mae_by_dataset.png")
    found = tables(md)
    assert len(found) == 3
    for table in found:
        assert {len(row) for row in table} == {len(table[0])}
        assert set(table[1]) <= {"---", "---:"}
    by_dataset, per_model, yes_no = ({row[0]: dict(zip(t[0], row)) for row in t[2:]} for t in found)
    assert by_dataset["news"] == {"dataset": "news", "test articles": "120", "chosen on validation": "bge-m3 + ridge",
                                  "test MAE": "0.751", "95% CI": "[0.700, 0.800]", "baseline": "0.680",
                                  "band": "partial"}
    assert by_dataset["blogs"]["baseline"] == "n/a" and by_dataset["blogs"]["band"] == "no baseline"
    assert per_model["bge-m3"] == {"model": "bge-m3", "news": "0.751 (ridge)", "blogs": "n/a"}
    assert yes_no["yes_no"]["threshold"] == "0.420" and yes_no["yes_no"]["95% CI"] == "[0.700, 0.900]"
    assert found[0][1] == ["---", "---:", "---", "---:", "---:", "---:", "---"]   # numbers right-aligned
    assert "![Test MAE per dataset and model](figures/summary_mae_by_dataset.png)" in md
