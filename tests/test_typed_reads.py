"""Two facts the report reads through typed records (issue 27): what embedding each split cost (`EmbeddingCost`,
read by the training-cost table) and whether validation chose a regularisation at the edge of its grid (one
accessor over the probe's hyper-parameters). Older records still read; a renamed field fails loudly."""
import pytest

from records import as_model, model_entry, score_evaluation, score_probe
from study import findings
from study.errors import StudyError
from study.selection import describe_selected

OLD_CACHE = {"seconds": 2.5, "articles_per_s": 40.0, "tokens_per_s": 900.0, "devices": ["cpu"], "dtype": "float32"}
NEW_CACHE = {**OLD_CACHE, "seconds": 1.25, "batching": "length-sorted batches of up to 32 articles, no token limit",
             "packed": False, "tokenize_seconds": 0.01, "backend": "torch"}


def _evaluation(embedding_cost: dict, selected: dict | None = None):
    probe = score_probe(train_seconds=0.5, selected=selected or {})
    return as_model(score_evaluation({"m": model_entry("m", {"ridge": probe}, embedding_cost=embedding_cost)}))


def test_training_cost_reads_the_typed_embedding_cost_of_old_and_new_caches():
    (row,) = findings.training_cost(_evaluation({"train": OLD_CACHE, "val": NEW_CACHE, "test": None}))
    assert row["embedding_seconds"] == pytest.approx(2.5 + 1.25)
    assert row["total_seconds"] == pytest.approx(2.5 + 1.25 + 0.5)
    assert row["device"] == "cpu"
    assert row["share_of_fine_tuned"] == pytest.approx([4.25 / 3600, 4.25 / 7200])   # records.screening_setup: 1-2 h
    # a split whose cache recorded nothing (older caches), or a record without its time: no sum, no device made up
    (row,) = findings.training_cost(_evaluation({"train": None, "val": NEW_CACHE}))
    assert row["embedding_seconds"] is None and row["total_seconds"] is None and row["device"] is None
    (row,) = findings.training_cost(_evaluation({"train": {**OLD_CACHE, "seconds": None, "devices": []},
                                                 "val": NEW_CACHE}))
    assert row["embedding_seconds"] is None and row["device"] is None


def test_a_renamed_embedding_cost_field_fails_loudly():
    with pytest.raises(StudyError, match="secs"):
        _evaluation({"train": {**OLD_CACHE, "secs": OLD_CACHE["seconds"]}})


@pytest.mark.parametrize("selected, edge", [
    ({"alpha": 1000.0, "alpha_at_grid_edge": True, "val_mae_by_alpha": [0.1, 1000.0]}, True),
    ({"alpha": 10.0, "alpha_at_grid_edge": False}, False),
    ({"C": 0.01, "C_at_grid_edge": True, "threshold": 0.41}, True),
    ({"C": 1.0, "C_at_grid_edge": False, "threshold": 0.41}, False),
    ({"best_epoch": 3, "epochs_run": 5}, False),
    ({}, False),
])
def test_the_grid_edge_is_one_typed_accessor_that_the_words_agree_with(selected, edge):
    probe = _evaluation({"train": None}, selected).models["m"].probes["ridge"]
    assert probe.at_grid_edge is edge
    assert ("(at the edge of the grid)" in describe_selected(selected)) is edge
