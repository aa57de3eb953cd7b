"""config.yaml and dataset.yaml: a few hundred hostile bytes give one quick `error:` line naming the file and line;
numeric settings are finite and bounded."""
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from study.config import load_config, short_repr
from study.data import dataset_spec
from study.errors import StudyError


def _bomb(levels: int = 9) -> str:
    """The billion-laughs document: 9 aliases of 9 aliases ... of a 9-item list, ~350 bytes."""
    lines, prev = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'], "a"
    for name in "bcdefghijklmnop"[:levels - 1]:
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
        prev = name
    return "\n".join(lines) + f"\ndescription: *{prev}\n"


HOSTILE = [
    ("an alias bomb", _bomb(), ":1: anchors and aliases (&name, *name, <<) are not accepted"),
    ("a key given twice", "task: classification\nbaseline_f1: 0.9\ntask: regression\n",
     ":3: key 'task' given twice in one mapping (first on line 1)"),
    ("a key given twice in a flow mapping", "{task: regression, task: classification}\n", ":1: key 'task' given twice"),
    ("a merge key", "base: &b {task: regression}\nother:\n  <<: *b\n", ":1: anchors and aliases"),
    ("100,000 nested lists", "[" * 100_000 + "]" * 100_000 + "\n", ":1: nested more than 50 levels deep"),
    ("a 5,000-digit integer", "baseline_mae: " + "9" * 5000 + "\n", "a value cannot be read (Exceeds the limit"),
    ("a 100,000-item list", "baseline_mae: [" + ", ".join(["1"] * 100_000) + "]\n",
     "key 'baseline_mae': Input should be a valid number (found [1, 1, 1, 1, ...])"),
    ("a byte that is not UTF-8", "task: regr\xe9ssion\n", "not UTF-8 (byte 0xe9"),
]


@pytest.mark.parametrize("text, expect, fast", [
    pytest.param(t, e, fast, id=f"{c}, {'libyaml' if fast else 'pure Python'}",
                 marks=[pytest.mark.slow] if c == "a 100,000-item list" and not fast else [])   # 3 s in pure Python
    for fast in (True, False) for c, t, e in HOSTILE])
def test_a_hostile_dataset_yaml_is_one_quick_line(tmp_path, text, expect, fast, monkeypatch):
    """The same one line with libyaml's parser (anchors and depth checked on its events first) and without it."""
    import study.config

    if fast and not hasattr(__import__("yaml"), "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(study.config, "_FAST", fast)
    (tmp_path / "dataset.yaml").write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    t0 = time.perf_counter()
    with pytest.raises(StudyError) as err:
        dataset_spec(tmp_path)
    assert time.perf_counter() - t0 < 10
    line = str(err.value)
    assert line.startswith(f"{tmp_path / 'dataset.yaml'}") and expect in line, line
    assert "\n" not in line and len(line) < 400


def _config_with(tmp_path, edit):
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    edit(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.slow
def test_the_alias_bomb_in_config_yaml_under_a_memory_cap_is_one_line(tmp_path):
    """Run as a user would, with 1 GB of address space: no MemoryError, no traceback, well under a minute."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text((REPO / "config.yaml").read_text() + _bomb(10).replace("description:", "note:"))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); sys.path.insert(0, sys.argv[1]);"
            "from study import cli; from study.config import load_config; cli.run(lambda: load_config(sys.argv[2]))")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(REPO), str(cfg)], capture_output=True, text=True, timeout=120)
    assert time.perf_counter() - t0 < 60
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: {cfg}:{len((REPO / 'config.yaml').read_text().splitlines()) + 1}: anchors and aliases "
        "(&name, *name, <<) are not accepted: write the values out"], proc.stderr


def test_the_repository_config_loads():
    assert load_config(REPO / "config.yaml").random_seed == 42


@pytest.mark.parametrize("edit, expect", [
    (lambda c: c.update(score_range=[0, float("inf")]), "score_range must be [low, high], finite numbers"),
    (lambda c: c.update(bootstrap_samples=10**9), "key 'bootstrap_samples': Input should be less than or equal to 100000"),
    (lambda c: c.update(random_seed=-1), "key 'random_seed': Input should be greater than or equal to 0"),
    (lambda c: c.update(random_seed=2**40), "key 'random_seed': Input should be less than or equal to 2147483647"),
    (lambda c: c["datasets"]["uplifting_v5"].update(dimension_weights={"a": float("inf"), "b": 1.0}),
     "dimension_weights must map dimension names to finite weights >= 0"),
    (lambda c: c["datasets"]["uplifting_v5"].update(dimension_weights={"a": 1e308, "b": 1e308}),
     "dimension_weights must map dimension names to finite weights >= 0"),
], ids=["infinite score_range", "a billion resamples", "seed -1", "seed 2^40", "an infinite weight",
        "weights whose sum overflows"])
def test_numeric_settings_are_finite_and_bounded(tmp_path, edit, expect):
    with pytest.raises(StudyError, match=None) as err:
        load_config(_config_with(tmp_path, edit))
    assert expect in str(err.value), err.value


def test_short_repr_never_builds_a_huge_repr():
    assert short_repr(10 ** 5000) == "a whole number of about 5000 digits"
    assert len(short_repr(list(range(10 ** 6)))) < 80
    assert len(short_repr("x" * 10 ** 6)) < 80
