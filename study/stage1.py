"""The Stage 1 bundle that leaves the study: a folder that runs no code when loaded, its model card, thresholds for
another set of dimension weights, and the export to the production loader's layout.

A bundle (`paths.stage1`, results/<ds>_stage1_<variant>_<probe>/) holds
- `stage1.json`: everything but arrays: the recipe (`embedding`, with the fingerprint of the embeddings the probe
  was trained on), `dimension_names`, `score_range`, `weights`, `tiers`, per recall target the plug-in and
  guaranteed `thresholds` (yes/no: `threshold`), `scaler` (mean, scale), `model` (how its arrays compute: `members`,
  each a chain of linear layers with ReLU between them or LightGBM model files; `output`: clip | sigmoid |
  probability), `probe` (the probe file's own fields and metadata), `card` (phase 3's test figures, for the card);
- `arrays.safetensors`: every array, by name: the MLP's and the linear probes' weights, and (scores) the
  validation labels and predictions the thresholds were chosen on (`val.labels`, `val.predictions`, and for a seed
  ensemble each member's, `val.member_predictions`), so thresholds can be chosen again for other weights;
- `lightgbm/m<member>_d<dimension>.txt` (yes/no: `m<member>.txt`): LightGBM model text;
- `model_card.md`: what the probe is, was trained and tested on, how well it did, its limits;
- `SHA256SUMS`: `<hex>  <file>` for every file above (`sha256sum -c SHA256SUMS` checks it), written last.

Loading reads JSON, safetensors and LightGBM text only: no pickle. `read_bundle` verifies every checksum, the
JSON against its schema and the arrays against the layout it names, then rebuilds the probe file's bundle, so
`probes.probe_from_bundle` gives exactly the estimator phase 3 evaluated. The README's reference loader
("Using a probe in production") reads the same files without this project.

`export_production` writes the layout of the production stage (llm-distillery's `EmbeddingStage`): one pickle
with a scikit-learn `scaler`, a torch `state_dict` and `model_config` of an MLP 256 -> 128 (dropout 0.2), fed
`title + "\\n\\n" + content` without a prefix and clamped to 0-10. A seed ensemble is exported as its one member
with the lowest validation MAE (the layout holds one MLP), with thresholds chosen again on that member's own
validation predictions.
"""
from __future__ import annotations

import collections
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from study.artifacts import atomic_path, save_pickle
from study.errors import StudyError
from study.screening import choose_threshold, guaranteed_threshold

FORMAT = "stage1-2"   # stage1-1 was one pickle
SPEC, ARRAYS, SUMS, CARD = "stage1.json", "arrays.safetensors", "SHA256SUMS", "model_card.md"
ENCODER = "encoder.safetensors"   # the fine-tuned encoder arm's own weights (recipe `finetuned`)
PRODUCTION_HIDDEN, PRODUCTION_DROPOUT, PRODUCTION_RANGE = [256, 128], 0.2, [0.0, 10.0]
PRODUCTION_TEXT = ("title + '\\n\\n' + content (either alone when the other is empty); the study strips title and "
                   "content of surrounding whitespace first: pass them stripped")


# -- the JSON's schema --------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scaler(_Strict):
    mean: list[float]
    scale: list[float]
    var: list[float]
    n_samples_seen: float


class Member(_Strict):
    layers: Optional[list[tuple[str, str]]] = None      # (weight, bias) array names; ReLU between layers
    lightgbm: Optional[list[str]] = None                # model text files, one per output column
    iterations: Optional[list[int]] = None


class Model(_Strict):
    members: list[Member]
    output: Literal["clip", "sigmoid", "probability"]   # per member, before the members' mean


class Threshold(_Strict):
    target_recall: float
    plug_in: Optional[float] = Field(alias="plug-in")
    guaranteed: Optional[float]
    confidence: float
    note: Optional[str]


class Spec(_Strict):
    format: Literal["stage1-2"]
    task: Literal["regression", "classification"]
    dataset: str
    variant: str
    probe_kind: str
    dimension_names: list[str]
    score_range: Optional[list[float]]
    embedding: dict[str, Any]
    embedding_fingerprint: dict[str, Any]
    evaluation: str
    probe_sha256: str
    weights: Optional[dict[str, float]] = None
    tiers: Optional[dict[str, float]] = None
    thresholds: Optional[list[Threshold]] = None
    recall_targets: Optional[list[float]] = None
    confidence: Optional[float] = None
    threshold: Optional[float] = None
    scaler: Scaler
    model: Model
    probe: dict[str, Any]
    card: dict[str, Any]

    @model_validator(mode="after")
    def _one_set_of_dimensions(self):
        if self.weights is not None and set(self.weights) != set(self.dimension_names):
            raise ValueError(f"weights name {sorted(self.weights)[:8]}, the dimensions are {self.dimension_names[:8]}")
        return self


# -- writing ------------------------------------------------------------------------------------
def _split_model(bundle: dict) -> tuple[dict, dict, dict]:
    """(model spec, arrays, LightGBM texts) of a probe file's bundle (study/probes.py `to_bundle`)."""
    kind, arrays, texts, members = bundle["kind"], {}, {}, []
    if kind in ("ridge", "logistic", "head"):
        coef = np.asarray(bundle["coef"])
        arrays[f"{kind}.weight"] = coef if kind != "logistic" else coef.reshape(1, -1)
        arrays[f"{kind}.bias"] = (np.asarray(bundle["intercept"]) if kind != "logistic" else
                                  np.array([bundle["intercept"]], dtype=np.float64))
        members.append({"layers": [(f"{kind}.weight", f"{kind}.bias")]})
    elif kind in ("mlp", "mlp_binary"):
        for i, m in enumerate(bundle["members"]):
            keys = list(m["state_dict"])
            for k in keys:
                arrays[f"m{i}.{k}"] = np.ascontiguousarray(m["state_dict"][k])
            members.append({"layers": [(f"m{i}.{w}", f"m{i}.{b}") for w, b in zip(keys[::2], keys[1::2])]})
    else:   # lightgbm, lightgbm_binary
        for i, m in enumerate(bundle["members"]):
            boosters = m["boosters"] if kind == "lightgbm" else [m["booster"]]
            iterations = m["best_iterations"] if kind == "lightgbm" else [m["best_iteration"]]
            names = [f"lightgbm/m{i}_d{d}.txt" for d in range(len(boosters))] if kind == "lightgbm" else [f"lightgbm/m{i}.txt"]
            texts.update(zip(names, boosters))
            members.append({"lightgbm": names, "iterations": [int(x) for x in iterations]})
    output = {"ridge": "clip", "head": "clip", "mlp": "clip", "lightgbm": "clip", "logistic": "sigmoid",
              "mlp_binary": "sigmoid",
              "lightgbm_binary": "probability"}[kind]
    return {"members": members, "output": output}, arrays, texts


def choose_thresholds(y_val, p_val, weights: np.ndarray, medium: float, targets, confidence: float) -> list[dict]:
    """Per recall target, the plug-in and guaranteed thresholds on the article score `p_val @ weights` chosen on
    validation exactly as phase 3 does (study/screening.py `screen`)."""
    s_true, s_pred = np.asarray(y_val, np.float64) @ weights, np.asarray(p_val, np.float64) @ weights
    out = []
    for target in targets:
        g = guaranteed_threshold(s_true, s_pred, medium, target, confidence)
        out.append({"target_recall": float(target), "plug-in": choose_threshold(s_true, s_pred, medium, target),
                    "guaranteed": g["threshold"], "confidence": g["confidence"], "note": g["note"]})
    return out


def card_figures(entry, model_entry, ev, metadata: dict, test_sha256: str | None) -> dict:
    """What the model card says, from phase 3's typed record of this probe (plain JSON)."""
    m = entry.model_dump(mode="json", by_alias=True)
    keep = ("overall_mae", "mae_ci95", "overall_rmse", "overall_spearman", "per_dimension", "per_language",
            "truncation", "val_mae", "seeds", "article_scores", "vs_mean_predictor", "vs_baseline", "f1", "f1_ci95",
            "precision", "precision_ci95", "recall", "recall_ci95", "roc_auc", "roc_auc_ci95", "val_log_loss", "val_f1")
    figures = {k: m[k] for k in keep if k in m and m[k] is not None}
    if "screening" in m:
        figures["screening"] = [{k: t[k] for k in ("target_recall", "threshold", "test", "guaranteed")}
                                for t in m["screening"]["thresholds"]]
    return {"figures": figures, "n_test": ev.n_test, "test_sha256": test_sha256,
            "language_counts": dict(ev.language_counts), "truncated_fraction": model_entry.truncated_fraction,
            "max_tokens": model_entry.max_tokens, "evaluated_at": ev.evaluated_at,
            "baseline_mae": getattr(ev, "baseline_mae", None), "baseline_f1": getattr(ev, "baseline_f1", None),
            "n_train": metadata.get("n_train"), "n_val": metadata.get("n_val"),
            "data_sha256": metadata.get("data_sha256", {})}


def build_spec(probe_bundle: dict, probe_sha256: str, evaluation: str, *, weights=None, tiers=None,
               thresholds=None, recall_targets=None, confidence=None, card=None) -> tuple[dict, dict, dict]:
    """(stage1.json, arrays, LightGBM texts) of one probe file's bundle and what phase 3 chose for it."""
    meta = probe_bundle["metadata"]
    model, arrays, texts = _split_model(probe_bundle)
    model = Model.model_validate(model).model_dump()   # every member names layers, lightgbm and iterations (or null)
    scaler = probe_bundle["scaler"]
    spec = {"format": FORMAT, "task": meta.get("task", "regression"), "dataset": meta["dataset"],
            "variant": meta["variant"], "probe_kind": meta["probe"], "dimension_names": list(meta["dimension_names"]),
            "score_range": meta.get("score_range"), "embedding": meta["embedding"],
            "embedding_fingerprint": meta["embedding_fingerprint"], "evaluation": evaluation,
            "probe_sha256": probe_sha256,
            "scaler": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(), "var": scaler.var_.tolist(),
                       "n_samples_seen": float(np.asarray(scaler.n_samples_seen_).max())},
            "model": model, "card": card or {},
            "probe": {k: v for k, v in probe_bundle.items()
                      if k not in ("scaler", "coef", "intercept", "members", "state_dict", "boosters")}}
    if spec["task"] == "classification":
        spec["threshold"] = float(probe_bundle["threshold"])
    else:
        spec.update(weights={d: float(weights[d]) for d in spec["dimension_names"]}, tiers=dict(tiers),
                    thresholds=thresholds, recall_targets=[float(r) for r in recall_targets],
                    confidence=float(confidence))
    return spec, arrays, texts


def _json_bytes(data) -> bytes:
    from study.artifacts import _jsonable

    return (json.dumps(_jsonable(data), indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_bundle(folder: Path, spec: dict, arrays: dict, texts: dict, card: str, blobs: dict | None = None) -> None:
    """The bundle's files, each atomically, `SHA256SUMS` last (a kill midway leaves sums that refuse the mix);
    `blobs`: further files as bytes (the fine-tuned encoder's weights, `ENCODER`)."""
    from safetensors.numpy import save

    folder = Path(folder)
    files = {SPEC: _json_bytes(spec), ARRAYS: save({k: np.ascontiguousarray(v) for k, v in arrays.items()}),
             CARD: card.encode("utf-8"), **{name: text.encode("utf-8") for name, text in texts.items()},
             **(blobs or {})}
    for name, blob in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / name, "wb") as fh:
            fh.write(blob)
    sums = "".join(f"{hashlib.sha256(blob).hexdigest()}  {name}\n" for name, blob in sorted(files.items()))
    with atomic_path(folder / SUMS, "wb") as fh:
        fh.write(sums.encode())


# -- reading ------------------------------------------------------------------------------------
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")


def verified_files(folder: Path) -> dict[str, bytes]:
    """Every file `SHA256SUMS` lists, read once and checked against its digest."""
    folder = Path(folder)
    sums = folder / SUMS
    if not sums.is_file():
        raise StudyError(f"{folder}: {SUMS} is missing: refusing to read a Stage 1 bundle without its checksums")
    out = {}
    for lineno, line in enumerate(sums.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not _SAFE_NAME.match(name) or ".." in name.split("/"):
            raise StudyError(f"{sums}:{lineno}: not a '<sha256>  <file>' line of this bundle")
        path = folder / name
        if not path.is_file():
            raise StudyError(f"{folder}: {name} is missing (listed in {SUMS})")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != digest:
            raise StudyError(f"{path}: checksum differs from {SUMS}; the file was changed or damaged")
        out[name] = blob
    return out


def _scaler(s: Scaler, dim: int):
    from sklearn.preprocessing import StandardScaler

    if not (len(s.mean) == len(s.scale) == len(s.var) == dim):
        raise ValueError(f"the scaler holds {len(s.mean)} means for {dim} input features")
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = (np.array(v, dtype=np.float64) for v in (s.mean, s.scale, s.var))
    scaler.n_features_in_, scaler.n_samples_seen_ = dim, np.float64(s.n_samples_seen)
    return scaler


def _probe_bundle(spec: Spec, arrays: dict, texts: dict) -> dict:
    """The probe file's bundle (study/probes.py `to_bundle`) the spec and arrays describe."""
    bundle = dict(spec.probe)
    kind, members = bundle.get("kind"), spec.model.members
    bundle["scaler"] = _scaler(spec.scaler, len(spec.scaler.mean))
    if kind in ("ridge", "logistic", "head"):
        (w, b), = members[0].layers
        bundle["coef"] = arrays[w] if kind != "logistic" else arrays[w][0]
        bundle["intercept"] = arrays[b] if kind != "logistic" else float(arrays[b][0])
    elif kind in ("mlp", "mlp_binary"):
        bundle["members"] = [{"state_dict": collections.OrderedDict(
            (name.split(".", 1)[1], arrays[name]) for layer in m.layers for name in layer)} for m in members]
    elif kind in ("lightgbm", "lightgbm_binary"):
        bundle["members"] = [{"boosters": [texts[f] for f in m.lightgbm], "best_iterations": list(m.iterations)}
                             if kind == "lightgbm" else
                             {"booster": texts[m.lightgbm[0]], "best_iteration": m.iterations[0]} for m in members]
    else:
        raise ValueError(f"probe kind {kind!r}")
    return bundle


def read_bundle(folder) -> dict:
    """A Stage 1 bundle: {"spec" (stage1.json, checked), "arrays", "probe" (the probe file's bundle, rebuilt)}.
    Every checksum is verified first; JSON of another shape, an array header safetensors cannot read, or arrays
    that do not fit the layout the JSON names are refused (StudyError naming the file)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    folder = Path(folder)
    if not folder.is_dir():
        raise StudyError(f"Stage 1 bundle not found: {folder} (evaluate.py writes one folder per evaluated probe)")
    files = verified_files(folder)
    for need in (SPEC, ARRAYS):
        if need not in files:
            raise StudyError(f"{folder}: {SUMS} does not list {need}; not a Stage 1 bundle of format {FORMAT}")
    try:
        raw = json.loads(files[SPEC].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StudyError(f"{folder / SPEC}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StudyError(f"{folder / SPEC}: not a Stage 1 bundle of format {FORMAT} (found "
                         f"{raw.get('format') if isinstance(raw, dict) else type(raw).__name__}); rerun evaluate.py")
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise StudyError(f"{folder / SPEC}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    try:
        arrays = load(files[ARRAYS])
    except (SafetensorError, ValueError, OverflowError) as exc:
        raise StudyError(f"{folder / ARRAYS}: unreadable array header or data ({exc})") from None
    texts = {}
    for m in spec.model.members:
        for name in m.lightgbm or []:
            if name not in files:
                raise StudyError(f"{folder}: {name} is not listed in {SUMS}")
            texts[name] = files[name].decode("utf-8")
    from study.probes import probe_from_bundle

    try:
        bundle = _probe_bundle(spec, arrays, texts)
        estimator = probe_from_bundle(bundle)
        width = estimator.n_features_in_
        out = estimator.predict(np.zeros((1, width), np.float32)) if spec.task == "regression" else \
            estimator.predict_proba(np.zeros((1, width), np.float32))
        if spec.task == "regression" and np.shape(out)[-1] != len(spec.dimension_names):
            raise ValueError(f"the probe gives {np.shape(out)[-1]} scores for {len(spec.dimension_names)} dimensions")
    except StudyError as exc:
        raise StudyError(f"{folder}: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise StudyError(f"{folder}: its arrays do not fit the layout {SPEC} names ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); rerun evaluate.py") from None
    encoder = spec.embedding.get("finetuned")   # the fine-tuned encoder arm: its own weights travel with it
    if encoder is not None and (encoder != ENCODER or encoder not in files):
        raise StudyError(f"{folder}: the recipe serves a fine-tuned encoder from {encoder!r}, which {SUMS} does not "
                         f"list; rerun evaluate.py")
    return {"spec": spec, "arrays": arrays, "probe": bundle, "estimator": estimator, "sha256": files_digest(files),
            "encoder": files.get(encoder) if encoder else None}


def files_digest(files: dict) -> str:
    """One digest of a bundle: the sha256 of its SHA256SUMS content, as recomputed from the files."""
    return hashlib.sha256("".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n"
                                  for n, b in sorted(files.items())).encode()).hexdigest()


# -- dimension weights from a file --------------------------------------------------------------
def read_weights(path, dimension_names: list[str]) -> np.ndarray:
    """Dimension weights from a JSON or YAML file mapping each dimension name to its weight (the fine-tuned
    scorer's own weights), in the order of `dimension_names`. They must sum to 1: production's weighted average
    is the plain sum of weight x score, so other weights would put it off the 0-10 scale the tiers are read on."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"weights file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: not a JSON or YAML mapping ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for v in data.values()):
        raise StudyError(f"{path}: expected a mapping of dimension name to weight, e.g. {{\"{dimension_names[0]}\": 0.25}}")
    if set(map(str, data)) != set(dimension_names):
        raise StudyError(f"{path} names {sorted(map(str, data))}, the probe's dimensions are {sorted(dimension_names)}")
    w = np.array([float(data[d]) for d in dimension_names], dtype=np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise StudyError(f"{path}: weights must be finite and >= 0")
    if not math.isclose(w.sum(), 1.0, abs_tol=1e-6):
        raise StudyError(f"{path}: the weights sum to {w.sum():g}, not 1: production's weighted average (sum of "
                         "weight x score) would leave the 0-10 scale the tiers and thresholds are read on")
    return w


# -- the production loader's layout -------------------------------------------------------------
def export_refusal(spec: Spec, keep_prefix: bool) -> str | None:
    """Why the production layout cannot hold this bundle (None when it can)."""
    kind, recipe = spec.probe_kind, spec.embedding
    if spec.task != "regression":
        return "a yes/no probe: the production stage scores dimensions (an MLP regressor); serve it with score_articles.py"
    if kind != "mlp":
        return (f"a {kind} probe: the production layout holds one MLP ({PRODUCTION_HIDDEN[0]} -> {PRODUCTION_HIDDEN[1]}, "
                "a torch state_dict); export the variant's mlp probe, or serve this one with score_articles.py")
    config = spec.probe.get("model_config") or {}
    if list(config.get("hidden_sizes", [])) != PRODUCTION_HIDDEN or config.get("dropout") != PRODUCTION_DROPOUT:
        return (f"hidden sizes {config.get('hidden_sizes')}, dropout {config.get('dropout')}: the production loader "
                f"builds {PRODUCTION_HIDDEN}, dropout {PRODUCTION_DROPOUT} whatever model_config says")
    if list(spec.score_range or []) != PRODUCTION_RANGE:
        return f"score range {spec.score_range}: the production stage clamps to 0-10"
    if "concatenation" in recipe or recipe.get("chunks"):
        return ("a side-by-side or chunked variant: the production stage embeds each article once, with one model, "
                "truncated")
    if recipe.get("source") != "sentence-transformers":
        return f"embeddings from {recipe.get('source')}: the production stage loads a sentence-transformers model"
    if recipe.get("prefix") and not keep_prefix:
        return (f"the probe was trained on texts with the prefix {recipe['prefix']!r}; the production stage embeds "
                "them without one (a train/serve skew). Retrain with prefix \"\" in config.yaml, or give --keep-prefix "
                "and make production add the same prefix")
    return None


def export_member(spec: Spec) -> int:
    """The member exported: the one with the lowest validation MAE (ties: the first)."""
    val = (spec.probe.get("metadata", {}).get("seeds") or {}).get("val") or [0.0]
    return int(np.argmin(val))


def export_production(data: dict, out: Path, *, weights: np.ndarray, recall: float | None, rule: str,
                      keep_prefix: bool = False) -> dict:
    """Write the production pickle (and its .sha256) of a bundle read by `read_bundle`; returns what it holds
    besides the arrays (printed by score_articles.py). Thresholds are chosen again on the exported member's own
    validation predictions, with `weights`."""
    import torch

    spec: Spec = data["spec"]
    why = export_refusal(spec, keep_prefix)
    if why:
        raise StudyError(f"cannot export {spec.variant} + {spec.probe_kind} to the production layout: {why}")
    k = export_member(spec)
    member = data["probe"]["members"][k]
    arrays = data["arrays"]
    if "val.member_predictions" not in arrays:
        raise StudyError("the bundle holds no validation predictions per member; rerun evaluate.py")
    y_val, p_val = arrays["val.labels"], arrays["val.member_predictions"][k]
    targets = {t["target_recall"]: t for t in choose_thresholds(y_val, p_val, weights, spec.tiers["medium"],
                                                                 spec.recall_targets, spec.confidence)}
    target = max(targets) if recall is None else float(recall)
    if target not in targets:
        raise StudyError(f"--recall {target:g}: the bundle holds thresholds for {', '.join(f'{r:g}' for r in sorted(targets, reverse=True))} only")
    threshold = targets[target][rule]
    if threshold is None:
        raise StudyError(f"recall {target:g}: no {rule} threshold for the exported member "
                         f"({targets[target]['note'] or 'no medium+ validation article'}); "
                         "--rule plug-in routes without a guarantee, or choose a lower --recall")
    seeds = spec.probe["metadata"].get("seeds") or {}
    figures = spec.card.get("figures", {})
    member_test = (figures.get("seeds") or {}).get("test") or []
    names = spec.dimension_names
    info = {"dimension_names": names, "dimension_weights": dict(zip(names, map(float, weights))),
            "threshold": float(threshold), "recall_target": target, "threshold_rule": rule,
            "threshold_confidence": targets[target]["confidence"],
            "embedding_model_name": spec.embedding["model_name"], "max_tokens": spec.embedding.get("max_tokens"),
            "prefix": spec.embedding.get("prefix") or "", "text": PRODUCTION_TEXT,
            "member": {"index": k, "seed": _at(seeds.get("seeds"), k), "of": len(data["probe"]["members"]),
                       "val_mae": _at(seeds.get("val"), k), "test_mae": _at(member_test, k)},
            "ensemble": {"val_mae": spec.probe["metadata"].get("val_mae"), "test_mae": figures.get("overall_mae")},
            "source": {"dataset": spec.dataset, "variant": spec.variant, "probe": spec.probe_kind,
                       "bundle_sha256": data["sha256"]}}
    config = spec.probe["model_config"]
    pickle_data = {"scaler": data["probe"]["scaler"],
                   "state_dict": collections.OrderedDict((key, torch.from_numpy(np.array(v)))
                                                         for key, v in member["state_dict"].items()),
                   "model_config": {"input_dim": int(config["input_dim"]), "output_dim": int(config["output_dim"]),
                                    "hidden_sizes": list(PRODUCTION_HIDDEN), "dropout": PRODUCTION_DROPOUT},
                   **info}
    save_pickle(Path(out), pickle_data)
    return info


def _at(values, k):
    """values[k], or None where the record has no such entry."""
    return values[k] if values and k < len(values) else None


# -- the model card -----------------------------------------------------------------------------
def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else "[n/a]"


def model_card(spec: dict) -> str:
    """The markdown card beside a bundle: data, languages, metrics with CIs, thresholds, recipe, limits."""
    c, f, r = spec["card"], spec["card"].get("figures", {}), spec["embedding"]
    meta = spec["probe"].get("metadata", {})
    lines = [f"# Stage 1 model card: {spec['dataset']} · {spec['variant']} + {spec['probe_kind']}", "",
             f"Made by evaluate.py ({spec['evaluation']}); the probe file's sha256 {spec['probe_sha256']}.", "",
             "## Data", "", "| split | articles | sha256 of the file |", "|---|---|---|"]
    for split, n in (("train", c.get("n_train")), ("val", c.get("n_val")), ("test", c.get("n_test"))):
        sha = c.get("test_sha256") if split == "test" else c.get("data_sha256", {}).get(split)
        lines.append(f"| {split} | {n if n is not None else 'n/a'} | `{sha or 'n/a'}` |")
    langs = c.get("language_counts") or {}
    lines += ["", "Test languages: " + (", ".join(f"{k} {v}" for k, v in sorted(langs.items(), key=lambda x: -x[1]))
                                        or "n/a") + ".", "", "## Test figures (95% CIs)", ""]
    if spec["task"] == "regression":
        lines.append(f"- MAE {f.get('overall_mae', float('nan')):.3f} {_ci(f.get('mae_ci95'))}, RMSE "
                     f"{f.get('overall_rmse', float('nan')):.3f}, Spearman {f.get('overall_spearman') or float('nan'):.3f}; "
                     f"validation MAE {f.get('val_mae', float('nan')):.3f}"
                     + (f"; the fine-tuned model's test MAE {c['baseline_mae']:.2f}" if c.get("baseline_mae") else ""))
        for lang, g in sorted((f.get("per_language") or {}).items()):
            lines.append(f"- {lang}: {g['n']} articles, MAE " + (f"{g['mae']:.3f}" if g.get("mae") is not None else "n/a"))
        seeds = f.get("seeds") or {}
        if seeds.get("stochastic") and seeds.get("n", 1) > 1:
            t = seeds["test_spread"]
            lines.append(f"- a seed ensemble of {seeds['n']}; each seed alone: test MAE {t['mean']:.3f} ± "
                         f"{(t['sd'] or 0):.3f} ({t['min']:.3f}-{t['max']:.3f})")
        lines += ["", f"## Thresholds (article score = weighted mean; weights {spec['weights']}; tiers {spec['tiers']})", "",
                  "| recall target | plug-in (validation only) | guaranteed | confidence | test skip share at the guaranteed one |",
                  "|---|---|---|---|---|"]
        tests = {t["target_recall"]: t for t in f.get("screening", [])}
        for t in spec["thresholds"]:
            g = (tests.get(t["target_recall"]) or {}).get("guaranteed") or {}
            skip = (g.get("test") or {}).get("skip_share")
            lines.append(f"| {t['target_recall']:g} | {_num(t['plug-in'])} | {_num(t['guaranteed'])}"
                         f"{' (' + t['note'] + ')' if t['note'] else ''} | {t['confidence']:.0%} | "
                         f"{'n/a' if skip is None else f'{skip:.1%}'} |")
    else:
        lines.append(f"- F1 {_num(f.get('f1'))} {_ci(f.get('f1_ci95'))}, precision {_num(f.get('precision'))} "
                     f"{_ci(f.get('precision_ci95'))}, recall {_num(f.get('recall'))} {_ci(f.get('recall_ci95'))}, "
                     f"ROC AUC {_num(f.get('roc_auc'))}; yes where P(yes) >= {spec['threshold']:.4f} (chosen on validation)")
    lines += ["", "## Recipe (train and serve with the same one)", "",
              f"- model `{r.get('model_name', '+'.join(p.get('model_name', '?') for p in r.get('concatenation', [])))}`, "
              f"revision `{spec['embedding_fingerprint'].get('revision')}`, dtype {spec['embedding_fingerprint'].get('dtype')}",
              f"- text: {r.get('text', 'title, blank line, content')}; prefix {r.get('prefix', '')!r}; max tokens "
              f"{r.get('max_tokens')}; pooling {r.get('pooling')}; normalised {r.get('normalize')}",
              (f"- fine-tuned end to end (finetune_encoder.py): the model's weights are replaced by {r['finetuned']} "
               f"(epoch {(meta.get('selected') or {}).get('best_epoch')} of {(meta.get('selected') or {}).get('epochs_run')}, "
               f"chosen on validation); a linear head reads its pooled output; the revision above is the base model's"
               if r.get("finetuned") else
               f"- probe: {spec['probe_kind']}, trained {meta.get('trained_at', '?')}, seeds "
               f"{(meta.get('seeds') or {}).get('seeds')}"),
              "", "## Limits", "",
              f"- Tested on {c.get('n_test', '?')} articles of one dataset; languages outside the list above were not tested.",
              f"- {c.get('truncated_fraction', 0):.0%} of test articles were longer than {c.get('max_tokens')} tokens "
              "and were cut; longer articles are judged on their beginning.",
              "- A threshold's guarantee holds for articles like the validation split (same sources, period, labelling); "
              "the plug-in threshold has none.",
              "- Serving with another prefix, truncation, model revision or text construction changes the scores "
              "(score_articles.py refuses another revision)."]
    return "\n".join(lines) + "\n"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"
