"""config.yaml validation and input-data validation: every bad input names the file, line and field."""
import json
import re

import numpy as np
import pytest
import yaml

from conftest import REPO
from study.config import load_config
from study.data import Dataset, build_text, load_baseline_predictions, load_split
from study.errors import StudyError


def _write_cfg(tmp_path, mutate):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    mutate(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_repository_config_has_the_study_models():
    cfg = load_config()
    assert cfg.default_models == ["multilingual-MiniLM-L12-v2", "multilingual-mpnet-base-v2",
                                  "multilingual-e5-large", "bge-m3"]
    assert cfg.model("multilingual-e5-large").prefix == "query: "
    assert cfg.model("bge-m3").max_tokens == 8192
    assert cfg.model("qwen2.5-1.5b-frozen").source == "transformers"
    assert min(cfg.probe_methods.ridge.alphas) == 0.01 and max(cfg.probe_methods.ridge.alphas) == 10000
    assert cfg.datasets["uplifting_v5"].baseline_mae == 0.68


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c.update(random_sed=1), "unknown key 'random_sed'"),
    (lambda c: c["embedding_models"]["bge-m3"].update(max_tokenz=5), "unknown key 'embedding_models.bge-m3.max_tokenz'"),
    (lambda c: c.pop("score_range"), "missing required key 'score_range'"),
    (lambda c: c["probe_methods"]["mlp"].pop("patience"), "missing required key 'probe_methods.mlp.patience'"),
    (lambda c: c["embedding_models"]["bge-m3"].update(max_tokens="long"), "key 'embedding_models.bge-m3.max_tokens'"),
    (lambda c: c.update(device="gpu"), "key 'device'"),
])
def test_bad_config_names_the_key(tmp_path, mutate, expected):
    with pytest.raises(StudyError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        load_config(_write_cfg(tmp_path, mutate))


def test_unknown_model_is_a_clear_error():
    with pytest.raises(StudyError, match="model 'nope' is not in embedding_models"):
        load_config().select_variants(["nope"], None)
    with pytest.raises(StudyError, match="model 'bge-m3-tx' is not in embedding_models"):
        load_config().select_variants(["bge-m3-tx"], None)


def test_models_and_max_tokens_mean_the_same_everywhere():
    cfg = load_config()
    names = lambda *a, **k: [v.name for v in cfg.select_variants(*a, **k)]  # noqa: E731
    assert names(None, None) == cfg.default_models
    assert names(["bge-m3"], None) == ["bge-m3"]
    assert names(["bge-m3"], [8192]) == ["bge-m3"]                  # the config value keeps the plain name
    assert names(["bge-m3", "multilingual-e5-small"], [256, 512]) == [
        "bge-m3-t256", "bge-m3-t512", "multilingual-e5-small-t256", "multilingual-e5-small"]
    assert names(["bge-m3-t512"], None) == names(["bge-m3"], [512]) == ["bge-m3-t512"]
    v = cfg.parse_variant("bge-m3-t512")
    assert (v.model, v.max_tokens, v.name) == ("bge-m3", 512, "bge-m3-t512")
    with pytest.raises(StudyError, match="contradicts --max-tokens 256"):
        cfg.select_variants(["bge-m3-t512"], [256])
    # a sweep skips the values beyond a model's positions (512 for e5-large), with a note
    assert names(["multilingual-e5-large", "bge-m3"], [512, 1024]) == [
        "multilingual-e5-large", "bge-m3-t512", "bge-m3-t1024"]
    with pytest.raises(StudyError, match="exceeds its model's positions"):
        cfg.select_variants(["multilingual-e5-large"], [1024])
    # phases that read results: every available variant, kept where --max-tokens says
    assert names(None, None, available=["bge-m3", "bge-m3-t512"]) == ["bge-m3", "bge-m3-t512"]
    assert names(None, [512], available=["bge-m3", "bge-m3-t512"]) == ["bge-m3-t512"]


def test_build_text_matches_the_screening_stage():
    assert build_text("Title", "Body") == "Title\n\nBody"
    assert build_text("", "Body") == "Body"
    assert build_text("Title", "") == "Title"
    assert build_text(" T ", None) == "T"


def _dataset(tmp_path, lines, split="train"):
    folder = tmp_path / "ds"
    folder.mkdir(exist_ok=True)
    (folder / f"{split}.jsonl").write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return Dataset("ds", folder, None)


def _art(i, **kw):
    rec = {"id": f"a{i}", "title": "Titel", "content": "Inhoud van het artikel.", "url": "u", "language": "nl",
           "labels": [1.0, 2.0], "dimension_names": ["x", "y"]}
    rec.update(kw)
    return rec


@pytest.mark.parametrize("bad, message", [
    ('{"id": "a1", "title": ', r"train\.jsonl:2: malformed JSON \(.*; the line is cut short\)"),
    ('{"id": "a1", "title": x}', r"train\.jsonl:2: malformed JSON \(Expecting value; column 23\)"),
    (_art(1, id=None), r"train\.jsonl:2: field 'id' must be a non-empty string or a whole number, found None"),
    (_art(1, dimension_names=["x", "x"]), r"train\.jsonl:2: field 'dimension_names' names 'x' more than once"),
    (_art(1, title="", content=""), r"train\.jsonl:2: article 'a1' has neither 'title' nor 'content'"),
    (_art(1, labels=[1.0]), r"train\.jsonl:2: field 'labels' must be a list of 2 numbers"),
    (_art(1, labels=[1.0, "high"]), r"train\.jsonl:2: field 'labels' must hold only numbers"),
    (_art(1, labels=[1.0, 11.5]), r"train\.jsonl:2: field 'labels' outside score_range \[0, 10\]: y=11\.5"),
    (_art(1, dimension_names=["x", "z"]), r"train\.jsonl:2: field 'dimension_names'"),
    (_art(0), r"train\.jsonl:2: article id 'a0' already appears on line 1"),
    ({k: v for k, v in _art(1).items() if k != "labels"}, r"train\.jsonl:2: field 'labels' is missing"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, bad, message):
    ds = _dataset(tmp_path, [_art(0), bad])
    with pytest.raises(StudyError, match=message):
        load_split(ds, "train", (0, 10))


def test_missing_split_and_language_detection(tmp_path):
    ds = _dataset(tmp_path, [_art(0, language=None, title="Het klimaat",
                                  content="De regering kondigt vandaag nieuwe maatregelen aan voor de energietransitie."),
                             _art(1, language="fr")])
    split = load_split(ds, "train", (0, 10))
    assert split.languages.tolist() == ["nl", "fr"]
    assert split.language_detected.tolist() == [True, False]
    assert split.labels.dtype == np.float32 and split.labels.shape == (2, 2)
    with pytest.raises(StudyError, match="split 'val' missing"):
        load_split(ds, "val", (0, 10))


def test_baseline_predictions_match_by_id_or_by_checked_position(tmp_path):
    ds = _dataset(tmp_path, [_art(0, labels=[1.0, 2.0]), _art(1, labels=[3.0, 4.0]), _art(2, labels=[5.0, 6.0])],
                  split="test")
    split = load_split(ds, "test", (0, 10))
    by_id = tmp_path / "by_id.json"
    by_id.write_text(json.dumps({"predictions": [[6, 5.5], [1, 2]], "article_ids": ["a2", "a0"],
                                 "dimension_names": ["y", "x"]}))
    rows, preds = load_baseline_predictions(by_id, split)
    assert rows.tolist() == [2, 0] and preds.tolist() == [[5.5, 6], [2, 1]]  # columns reordered to x, y

    by_pos = tmp_path / "by_pos.json"
    by_pos.write_text(json.dumps({"predictions": [[1, 2], [3, 4], [5, 6]], "labels": [[1, 2], [3, 4], [5, 6]],
                                  "article_ids": ["article_0", "article_1", "article_2"], "dimension_names": ["x", "y"]}))
    assert load_baseline_predictions(by_pos, split)[0].tolist() == [0, 1, 2]

    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps({"predictions": [[1, 2], [3, 4], [5, 6]], "labels": [[3, 4], [1, 2], [5, 6]],
                                    "article_ids": ["article_0", "article_1", "article_2"], "dimension_names": ["x", "y"]}))
    with pytest.raises(StudyError, match="labels do not agree"):
        load_baseline_predictions(shuffled, split)


@pytest.mark.parametrize("tiers, expect", [
    ({"medium": 7.0, "high": 4.0}, "medium (7) must be below high (4)"),
    ({"medium": 4.0, "high": 12.0}, "must lie inside score_range [0, 10]"),
])
def test_tiers_out_of_order_or_range_stop_at_start(tmp_path, tiers, expect):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["tiers"] = tiers
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(StudyError, match=re.escape(expect)):
        load_config(path)


def test_byte_order_mark_is_accepted_and_a_non_utf8_byte_is_named(tmp_path):
    ds = _dataset(tmp_path, [_art(0), _art(1)])
    path = ds.path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())          # a BOM, as some editors write
    assert load_split(ds, "train", (0, 10)).ids.tolist() == ["a0", "a1"]
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"Titel", b"Tit\xe9l")            # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(StudyError, match=r"train\.jsonl:2: not UTF-8 \(byte 0xe9"):
        load_split(ds, "train", (0, 10))
