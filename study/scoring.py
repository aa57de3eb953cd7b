"""Stage 1 as a tool: embed new articles by a probe's recorded recipe, score them, route them.

What a probe needs travels in one folder phase 3 writes, its Stage 1 bundle (`write_stage1_bundles`,
`paths.stage1`; JSON + safetensors + LightGBM text, no pickle, study/stage1.py): the probe, its recipe
(`embedding`, and `embedding_fingerprint` with the model's revision and dtype) and, for a score dataset, the
dimension weights, the tiers, the probe's thresholds chosen on validation per recall target (plug-in and
guaranteed) and the validation predictions they were chosen on. A probe file serves too, with the evaluation
JSON beside it for the rest. `load_stage1` makes either into one `Stage1`.

Articles are embedded through the study's own encode loop (`study.embedders.embed_texts`: the
same text, prefix, truncation or windows, batches and dtype as phase 1), each part of a
side-by-side pair by its own recipe, the parts' embeddings set side by side in the recorded order.

The input is read twice, streaming: once to check every line (text, id, duplicate ids; nothing is
loaded or written before it passes), once to score it `chunk` articles at a time. After each chunk
the scored lines are appended to a partial file beside the output and the checkpoint records how
far it got; a rerun with the same input, probe and settings resumes after the last chunk, and the
finished output, renamed into place only when complete, is byte for byte an uninterrupted run's.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study import paths, stage1
from study.artifacts import load_pickle, read_json, write_json
from study.backends import parse_backend, with_backend
from study.config import Config, EmbeddingModel
from study.config import short_repr
from study.data import _finite, article_of, clip_text, jsonl_records
from study.embedders import batching_for, embed_texts, enable_packing, load_model, with_layers
from study.errors import StudyError
from study.finetune import load_finetuned, predictions, stage1_parts
from study.probes import probe_from_bundle
from study.provenance import model_revision
from study.results import read_evaluation
from study.screening import TIER_NAMES, tier_of
from study.tasks import ARM

CHUNK_ARTICLES = 1024   # articles scored between two checkpoints (phase 1 saves its partial work as often)
ROUTES = ("final", "fine-tuned")   # below the threshold the probe's scores are final; at or above it, fine-tuned


# -- the probe and what phase 3 chose for it ----------------------------------------------------
@dataclass
class Stage1:
    """A probe ready to serve: the estimator, its recipe and, for scores, weights, tiers and threshold."""
    path: Path
    sha256: str
    meta: dict
    probe: object
    task: str                       # "regression" | "classification"
    dimension_names: list[str]
    weights: np.ndarray | None = None          # regression: the article score's weights, summing to 1
    tiers: dict | None = None
    thresholds: dict = field(default_factory=dict)   # {recall target: threshold on the article score}
    recall: float | None = None
    threshold: float | None = None   # regression: on the article score; classification: on P(yes)
    rule: str | None = None          # regression: which threshold routes (RULES)
    bundle: dict | None = None       # a Stage 1 bundle as study/stage1.py `read_bundle` gives it
    with_tiers: bool = True          # regression: write each article's tier (production's output has none)
    encoder: bytes | None = None     # the fine-tuned encoder arm: its weights (safetensors), loaded over the base model


RULES = ("guaranteed", "plug-in")   # which of phase 3's thresholds routes (study/screening.py)


def _thresholds(screening) -> list[dict]:
    """Phase 3's thresholds of one probe (its `screening.thresholds`) as plain dicts, one per recall target."""
    return [{"target_recall": t.target_recall, "plug-in": t.threshold, "guaranteed": t.guaranteed.threshold,
             "confidence": t.guaranteed.confidence, "note": t.guaranteed.note} for t in screening.thresholds]


def write_stage1_bundles(cfg: Config, ev) -> list[Path]:
    """Phase 3: one Stage 1 bundle per evaluated probe (`paths.stage1`, a folder of JSON + safetensors + LightGBM
    text + model card + SHA256SUMS, study/stage1.py), each file atomically; `ev` is the evaluation just written.
    The validation predictions the thresholds were chosen on go with it (each member's too)."""
    from study.cache import read_embeddings

    written = []
    setup = getattr(ev, "screening_setup", None)
    evaluation = f"{paths.evaluation(cfg, ev.dataset).name} of {ev.evaluated_at}"
    for variant, model in ev.models.items():
        val = read_embeddings(paths.embedding_cache(cfg, ev.dataset, variant, "val"))
        test_sha = read_embeddings(paths.embedding_cache(cfg, ev.dataset, variant, "test"))["fingerprint"].get("data_sha256")
        for kind, entry in model.probes.items():
            blobs = {}
            if kind == ARM:   # the fine-tuned encoder: its head on its own pooled output, its weights beside it
                folder = paths.finetuned(cfg, ev.dataset, variant)
                bundle, blobs[stage1.ENCODER], sha = stage1_parts(folder, stage1.ENCODER)
                estimator, P_val = None, predictions(folder, "val", val["ids"])
            else:
                probe_path = paths.probe(cfg, ev.dataset, variant, kind)
                bundle = load_pickle(probe_path)
                sha = paths.checksum(probe_path).read_text().split()[0]
                estimator = probe_from_bundle(bundle)
                P_val = None
            card = stage1.card_figures(entry, model, ev, bundle["metadata"], test_sha)
            if setup is None:
                spec, arrays, texts = stage1.build_spec(bundle, sha, evaluation, card=card)
            else:
                arrays_val = {"val.labels": np.asarray(val["labels"], np.float32),
                              "val.predictions": P_val if P_val is not None else estimator.predict(val["embeddings"])}
                if hasattr(estimator, "member_outputs"):
                    arrays_val["val.member_predictions"] = np.stack(estimator.member_outputs(val["embeddings"]))
                spec, arrays, texts = stage1.build_spec(
                    bundle, sha, evaluation, weights=setup.weights, tiers=setup.tiers, thresholds=_thresholds(entry.screening),
                    recall_targets=setup.recall_targets, confidence=setup.confidence, card=card)
                arrays.update(arrays_val)
            out = paths.stage1(cfg, ev.dataset, variant, kind)
            stage1.write_bundle(out, spec, arrays, texts, stage1.model_card(spec), blobs)
            written.append(out)
    return written


def load_stage1(cfg: Config, path, recall: float | None = None, rule: str = "guaranteed",
                expect: str | None = None, weights_file=None) -> Stage1:
    """A Stage 1 bundle of phase 3 (a folder, study/stage1.py; no pickle), or a probe file and what phase 3 chose
    for it in the evaluation JSON beside it; either checksum verified. `recall` picks the screening target
    (default: the highest recorded), `rule` its threshold: the guaranteed one (keeps the target on new articles
    at the recorded confidence; refused when validation could not certify it) or the plug-in one (meets it on
    validation only). `weights_file` (a bundle only): the article score's weights from that file (the fine-tuned
    scorer's), the thresholds chosen again for them on the bundle's validation predictions. `expect` ("stage1" |
    "probe"): refuse the other kind of file."""
    path = Path(path)
    is_stage1 = path.is_dir()
    if is_stage1 and (path / "recipe.json").is_file() and not (path / stage1.SUMS).exists():
        raise StudyError(f"{path}: a fine-tuned encoder's folder (finetune_encoder.py); serve the arm with --stage1 "
                         f"and the bundle evaluate.py writes for it, {path.parent}/<dataset>_stage1_<variant>_{ARM}")
    if expect == "stage1" and not path.exists():
        raise StudyError(f"Stage 1 bundle not found: {path} (evaluate.py writes one folder per evaluated probe)")
    if expect == "stage1" and not is_stage1:
        raise StudyError(f"{path}: not a Stage 1 bundle (the folder results/<ds>_stage1_<variant>_<probe>/ of "
                         "evaluate.py); give a probe file as --probe")
    if expect == "probe" and is_stage1:
        raise StudyError(f"{path}: a Stage 1 bundle; give it as --stage1")
    if weights_file is not None and not is_stage1:
        raise StudyError("--weights chooses thresholds again on a Stage 1 bundle's validation predictions; give --stage1")
    if is_stage1:
        data = stage1.read_bundle(path)
        spec, bundle, probe, sha = data["spec"], data["probe"], data["estimator"], data["sha256"]
    else:
        data = None
        bundle = load_pickle(path)
        try:
            probe = probe_from_bundle(bundle)
        except StudyError as exc:
            raise StudyError(f"{path}: {exc}") from None
        sha = paths.checksum(path).read_text().split()[0]
    meta = bundle["metadata"]
    if "embedding" not in meta or "embedding_fingerprint" not in meta:
        raise StudyError(f"{path}: its metadata records no embedding recipe; rerun train_probes.py")
    stage = Stage1(path=path, sha256=sha, meta=meta, probe=probe, task=meta.get("task", "regression"),
                   dimension_names=list(meta["dimension_names"]), bundle=data, encoder=data and data["encoder"])
    if stage.task == "classification":
        if recall is not None or weights_file is not None:
            raise StudyError(f"{'--recall' if recall is not None else '--weights'} routes score datasets; a yes/no "
                             "probe decides at the threshold it chose on validation")
        stage.threshold = float(spec.threshold if is_stage1 else bundle["threshold"])
        return stage
    if is_stage1:
        tiers = spec.tiers
        if weights_file is None:
            weights, thresholds = spec.weights, [t.model_dump(by_alias=True) for t in spec.thresholds]
        else:
            w = stage1.read_weights(weights_file, stage.dimension_names)
            weights = dict(zip(stage.dimension_names, w))
            thresholds = stage1.choose_thresholds(data["arrays"]["val.labels"], data["arrays"]["val.predictions"], w,
                                                  tiers["medium"], spec.recall_targets, spec.confidence)
    else:
        weights, tiers, thresholds = _chosen_in_evaluation(cfg, path, meta)
    stage.weights = np.array([weights[d] for d in stage.dimension_names], dtype=np.float64)
    stage.tiers = dict(tiers)
    _choose_threshold(stage, {t["target_recall"]: t for t in thresholds}, recall, rule)
    return stage


def _chosen_in_evaluation(cfg: Config, probe_path: Path, meta: dict):
    """(weights, tiers, thresholds) phase 3 recorded for this probe file in the evaluation JSON beside it."""
    ev = read_evaluation(cfg.model_copy(update={"results_dir": str(probe_path.resolve().parent)}), meta["dataset"])
    where = paths.evaluation(cfg, meta["dataset"]).name
    entry = ev.models[meta["variant"]].probes.get(meta["probe"]) if meta["variant"] in ev.models else None
    if entry is None:
        raise StudyError(f"{where} beside {probe_path.name} has no {meta['variant']} + {meta['probe']}; run "
                         f"evaluate.py --models {meta['variant']}")
    if (entry.val_mae, entry.train_seconds) != (meta["val_mae"], meta["train_seconds"]):
        raise StudyError(f"{where} was made with another {probe_path.name} (validation MAE {entry.val_mae}, "
                         f"trained in {entry.train_seconds} s, against the probe's {meta['val_mae']}, "
                         f"{meta['train_seconds']} s); rerun evaluate.py")
    return ev.screening_setup.weights, ev.screening_setup.tiers, _thresholds(entry.screening)


def _choose_threshold(stage: Stage1, targets: dict, recall: float | None, rule: str) -> None:
    stage.recall = max(targets) if recall is None else float(recall)
    if stage.recall not in targets:
        raise StudyError(f"--recall {recall:g}: phase 3 chose thresholds for the recall targets "
                         f"{', '.join(f'{r:g}' for r in sorted(targets, reverse=True))} only "
                         "(config screening_recall)")
    chosen = targets[stage.recall]
    stage.rule = rule
    stage.threshold = chosen[rule]
    if stage.threshold is None and rule == "guaranteed":
        raise StudyError(f"recall {stage.recall:g} {chosen['note']} of medium+ validation articles at "
                         f"{chosen['confidence']:.0%} confidence; --rule plug-in routes by the threshold "
                         "that met it on validation only (no guarantee), or choose a lower --recall")
    if stage.threshold is None:
        raise StudyError(f"no threshold for recall {stage.recall:g}: the validation split held no medium+ article")


# -- the embedding recipe -----------------------------------------------------------------------
@dataclass
class Part:
    """One model of the recipe (the only one, or one part of a pair), resolved on this machine."""
    recipe: dict
    spec: EmbeddingModel
    location: str
    dtype: str
    recorded_revision: str | None
    backend: str = "torch"    # the runtime (study/backends.py): the one the probe's embeddings were made with by default


def recipe_parts(meta: dict) -> list[tuple[dict, dict]]:
    """(recipe, fingerprint) of each model whose embeddings the probe reads, in the order they go side by side."""
    recipe, fp = meta["embedding"], meta["embedding_fingerprint"]
    if "concatenation" in recipe:
        return list(zip(recipe["concatenation"], fp["parts"]))
    return [(recipe, fp)]


def resolve_part(cfg: Config, recipe: dict, fp: dict, dtype: str | None = None, backend: str | None = None) -> Part:
    """The recipe as a model entry (speed settings, batch and token budget, from the config model of the same
    model_name, when there is one), where its weights are here, and the dtype to embed in (default: the one
    the probe's embeddings were made with)."""
    same = next((m for m in cfg.embedding_models.values() if m.model_name == recipe["model_name"]), None)
    spec = EmbeddingModel(**{**(same.model_dump() if same else {}), "source": recipe["source"],
                             "model_name": recipe["model_name"], "dimensions": recipe["dimensions"],
                             "max_tokens": recipe["max_tokens"], "prefix": recipe["prefix"],
                             "pooling": recipe["pooling"], "normalize": recipe["normalize"]})
    name = "_probe_recipe"
    location = cfg.model_copy(update={"embedding_models": {name: spec}}).model_location(name)
    return Part(recipe=recipe, spec=spec, location=location, dtype=dtype or fp.get("dtype") or "float32",
                recorded_revision=fp.get("revision"), backend=backend or fp.get("backend") or "torch")


def check_revision(part: Part, allow_revision: bool, warn, unknown_ok: bool = False) -> bool:
    """Stop when the model's weights are not those the probe's embeddings were made with (the hub commit, or a
    hash of a local folder's weight files), unless `allow_revision` (then a warning). `unknown_ok`: where the
    weights are not here yet (a hub model not downloaded), say nothing and return False (check after loading)."""
    model_revision.cache_clear()   # a hub model downloaded just now has a revision now
    found = model_revision(part.location)
    if found is None and unknown_ok:
        return False
    if part.recorded_revision and found != part.recorded_revision:
        say = (f"model {part.recipe['model_name']} at {part.location} has revision {found}, but the probe was trained "
               f"on embeddings of revision {part.recorded_revision}")
        if not allow_revision:
            raise StudyError(say + "; retrain the probe on this model, or score anyway with --allow-revision")
        warn(f"warning: {say} (--allow-revision: scoring anyway; the numbers may differ from the study's)")
    return True


class Embedder:
    """Texts -> the probe's input: each part embedded by its recipe through `embed_texts`, side by side."""

    def __init__(self, cfg: Config, parts: list[Part], device, batch_size: int | None = None,
                 allow_revision: bool = False, warn=print, packed: bool = False, finetuned: bytes | None = None,
                 where=None):
        self.parts, self.cfg, self.device, self.batch_size = parts, cfg, device, batch_size
        self.encoders = {}
        for part in parts:   # one encoder per model (a pair of two views of one model loads it once)
            checked = check_revision(part, allow_revision, warn, unknown_ok=True)   # before loading, where it can
            key = _key(part)
            if part.backend != "torch" and (packed or part.recipe.get("layer") is not None):
                raise StudyError(f"backend {part.backend} runs the model's own output on padded batches: not with "
                                 "--packed or a layer variant's probe (use --backend torch)")
            if key not in self.encoders:
                enc = load_model(part.spec, part.location, device, part.dtype, part.recipe["model_name"],
                                 max(p.recipe["max_tokens"] for p in parts))
                if enc.dim != part.spec.dimensions:
                    raise StudyError(f"model {part.recipe['model_name']} gives {enc.dim}-dim embeddings, the probe "
                                     f"was trained on {part.spec.dimensions}")
                if finetuned is not None:   # the fine-tuned encoder arm: its own weights over the base model's
                    enc = load_finetuned(enc, finetuned, where)
                weights = part.location if finetuned is None else \
                    f"{part.location}#finetuned-{hashlib.sha256(finetuned).hexdigest()[:16]}"   # what is exported
                enc = with_backend(enc, *parse_backend(part.backend), paths.runtime_models(cfg), weights,
                                   model_revision(part.location), say=warn)
                self.encoders[key] = enable_packing(enc) if packed else enc
            if not checked:
                check_revision(part, allow_revision, warn)

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = []
        for part in self.parts:
            enc = self.encoders[_key(part)]
            chunks = part.recipe.get("chunks")
            if part.recipe.get("layer") is not None:   # a hidden layer pooled as the model pools (phase 1's pass)
                enc = with_layers(enc, [part.recipe["layer"]])
            rows, budget = batching_for(self.device, part.spec.batch_size or self.cfg.batch_size, part.spec.token_budget,
                                        part.recipe["max_tokens"])   # as phase 1 batches
            emb, _, _ = embed_texts(
                enc, texts, max_tokens=part.recipe["max_tokens"], batch_size=self.batch_size or rows,
                token_budget=budget, prefix=part.recipe["prefix"],
                chunks={"overlap": chunks["overlap"], "max_windows": chunks["max_windows"]} if chunks else None)
            out.append(emb)
        return out[0] if len(out) == 1 else np.hstack(out)


def _key(part: Part) -> tuple:
    """One encoder per model and setting (a pair of two views of one model loads it once)."""
    return part.spec.source, part.location, part.dtype, part.spec.pooling, part.spec.normalize, part.backend


def tokens_read(meta: dict) -> int:
    """The most tokens of an article any part of the recipe reads (a chunked variant: all of its windows)."""
    return max(int(r["max_tokens"]) * int((r.get("chunks") or {}).get("max_windows", 1)) for r, _ in recipe_parts(meta))


# -- the input and the output ------------------------------------------------------------------------
def claim_output(cfg: Config, output, input_path, probe_path) -> Path:
    """`output`, refused when it is the input, the probe file or bundle (or its checksum), a folder, or lies under
    config's results/ or embeddings/ (see `hold_output` for one run per output)."""
    out = Path(output).expanduser().absolute()
    if out.is_dir():
        raise StudyError(f"--output {output} is a folder; name a file such as scored.jsonl")
    probe_path = Path(probe_path)
    for path, what in ((Path(input_path), "the --input file"), (probe_path, "the probe file or bundle it reads"),
                       (paths.checksum(probe_path), "the checksum of the probe file or bundle")):
        if out.resolve() == path.expanduser().resolve() or (out.exists() and path.exists() and os.path.samefile(out, path)):
            raise StudyError(f"--output {output} is {what}: it would be overwritten; name another file")
    for folder, what in ((cfg.results_path, "results/"), (cfg.embeddings_path, "embeddings/")):
        if out.resolve().is_relative_to(folder.resolve()):
            raise StudyError(f"--output {output} lies in {what} ({folder}), whose files the study owns; write the "
                             "scores elsewhere")
    return out


def hold_output(output) -> None:
    """One run per output: held until the run ends (`hold_run`); another is refused with a line naming the holder.
    Taken once everything is checked and loaded, so a refused command leaves no folder or file behind."""
    from study.artifacts import hold_run

    hold_run(paths.scoring_lock(Path(output).expanduser().absolute()), f"--output {output}")



def _articles(path: Path, with_labels: bool, n_dims: int, digest=None, tokens: int | None = None):
    """(line number, id, text, labels or None) of each non-blank line, read by the splits' own reader
    (study/data.py `jsonl_records`, `article_of`); StudyError at the first bad one. `digest` is given every byte
    read; `tokens`: each text clipped where a tokenizer reading that many tokens cannot reach (`clip_text`)."""
    for lineno, rec in jsonl_records(path, digest):
        article_id, _, text = article_of(path, lineno, rec)
        labels = None
        if with_labels:
            labels = rec.get("labels")
            if not isinstance(labels, list) or len(labels) != n_dims or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in labels):
                raise StudyError(f"{path}:{lineno}: field 'labels' must be a list of {n_dims} finite numbers "
                                 f"(--labels), found {short_repr(labels)}")
        yield lineno, article_id, text if tokens is None else clip_text(text, tokens), labels


def _id_hash(article_id) -> int:
    return int.from_bytes(hashlib.blake2b(str(article_id).encode("utf-8"), digest_size=8).digest(), "little")


def check_input(path: Path, with_labels: bool, n_dims: int) -> tuple[int, str]:
    """(articles, sha256 of the file) once every line has text and an id no other line has.

    Memory: 16 bytes per article (a 64-bit hash of its id and its line number), not the file."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"input not found: {path}")
    hashes, lines, block_h, block_l = [], [], [], []
    digest = hashlib.sha256()
    for lineno, article_id, _, _ in _articles(path, with_labels, n_dims, digest):
        block_h.append(_id_hash(article_id))
        block_l.append(lineno)
        if len(block_h) >= 65536:
            hashes.append(np.array(block_h, dtype=np.uint64))
            lines.append(np.array(block_l, dtype=np.int64))
            block_h, block_l = [], []
    hashes.append(np.array(block_h, dtype=np.uint64))
    lines.append(np.array(block_l, dtype=np.int64))
    h, ln = np.concatenate(hashes), np.concatenate(lines)
    if not len(h):
        raise StudyError(f"{path}: no articles")
    order = np.lexsort((ln, h))
    h, ln = h[order], ln[order]
    twice = np.flatnonzero(h[1:] == h[:-1])
    if len(twice):
        k = twice[np.argmin(ln[twice + 1])]   # the earliest line that repeats an id
        raise StudyError(f"{path}:{ln[k + 1]}: article id already appears on line {ln[k]} (ids must be unique)")
    return int(len(h)), digest.hexdigest()   # of the bytes checked: score_file scores only these


# -- scoring ----------------------------------------------------------------------------------------
def score_lines(stage: Stage1, ids, X: np.ndarray, labels) -> tuple[list[bytes], dict]:
    """The output lines of one chunk and its counts ({"routed"| "yes", "abs_error_sum"})."""
    counts = {"positive": 0, "abs_error_sum": 0.0}
    out = []
    if stage.task == "classification":
        p = stage.probe.predict_proba(X)[:, 1]
        for i, article_id in enumerate(ids):
            yes = bool(p[i] >= stage.threshold)
            counts["positive"] += yes
            rec = {"id": article_id, "p_yes": float(p[i]), "decision": "yes" if yes else "no"}
            if labels is not None:
                rec["labels"] = labels[i]
                counts["abs_error_sum"] += float(yes != bool(labels[i][0]))
            out.append(rec)
    else:
        P = stage.probe.predict(X)                       # float32, clipped to the score range, as phase 3
        s = np.asarray(P, np.float64) @ stage.weights    # the article score, as study/screening.py computes it
        tiers = tier_of(s, stage.tiers)
        for i, article_id in enumerate(ids):
            fine = bool(s[i] >= stage.threshold)         # phase 3 lets skip exactly the articles below it
            counts["positive"] += fine
            rec = {"id": article_id, "scores": dict(zip(stage.dimension_names, map(float, P[i]))),
                   "article_score": float(s[i]), "tier": TIER_NAMES[tiers[i]], "route": ROUTES[fine]}
            if not stage.with_tiers:
                del rec["tier"]
            if labels is not None:
                rec["labels"] = labels[i]
                counts["abs_error_sum"] += float(np.abs(P[i].astype(np.float64) - labels[i]).mean())
            out.append(rec)
    return [(_json_line(r) + "\n").encode("utf-8") for r in out], counts


def _json_line(record: dict) -> str:
    """One output line: UTF-8 as it is, but U+2028 / U+2029 escaped (readers that split on every Unicode line
    break would see two lines)."""
    return json.dumps(record, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _chunks(iterable, size: int):
    block = []
    for item in iterable:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _resume(state_path: Path, partial: Path, settings: dict) -> dict:
    """What the last checkpoint recorded, when it belongs to this very run (same input, probe, settings) and
    its partial file holds what it says; else a fresh start."""
    fresh = {"articles": 0, "bytes": 0, "positive": 0, "abs_error_sum": 0.0}
    if not state_path.is_file() or not partial.is_file():
        return fresh
    try:
        state = read_json(state_path)
    except StudyError:
        return fresh
    if not isinstance(state, dict) or state.get("settings") != settings or partial.stat().st_size < state.get("bytes", 0):
        return fresh
    return {k: state[k] for k in fresh}


def _publish(partial: Path, output: Path) -> None:
    """The finished partial file, fsynced, renamed onto the output (one atomic step)."""
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, output)


def score_file(stage: Stage1, embed, input_path, output, *, n_articles: int, input_sha256: str, settings: dict,
               chunk: int = CHUNK_ARTICLES, with_labels: bool = False, progress=None, tokens: int | None = None) -> dict:
    """Score `input_path` into `output` (JSON lines, one per article, input order), `chunk` articles a
    checkpoint; returns the summary. `settings` (what else the lines depend on) binds the checkpoint."""
    output = Path(output)
    partial, state_path = paths.scoring_partial(output), paths.scoring_checkpoint(output)
    bound = {**settings, "input_sha256": input_sha256, "probe_sha256": stage.sha256, "chunk": chunk,
             "labels": with_labels}
    state = _resume(state_path, partial, bound)
    if state["articles"] and progress is not None:
        progress.update(state["articles"])
    resumed, t0, scored = state["articles"], time.perf_counter(), 0
    output.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()   # of the bytes scored now (and skipped, resumed): they must be those checked
    with open(partial, "r+b" if state["articles"] else "wb") as fh:
        fh.truncate(state["bytes"])
        fh.seek(state["bytes"])
        articles = _articles(Path(input_path), with_labels, len(stage.dimension_names), digest, tokens)
        for k, block in enumerate(_chunks(articles, chunk)):
            if (k + 1) * chunk <= resumed:
                continue
            ids = [b[1] for b in block]
            X = embed([b[2] for b in block])
            lines, counts = score_lines(stage, ids, X, [b[3] for b in block] if with_labels else None)
            fh.write(b"".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
            state = {"articles": state["articles"] + len(block), "bytes": fh.tell(),
                     "positive": state["positive"] + counts["positive"],
                     "abs_error_sum": state["abs_error_sum"] + counts["abs_error_sum"]}
            write_json(state_path, {"settings": bound, **state})
            scored += len(block)
            if progress is not None:
                progress.update(len(block))
    if state["articles"] != n_articles or digest.hexdigest() != input_sha256:
        raise StudyError(f"{input_path} changed while it was scored ({state['articles']} articles read, "
                         f"{n_articles} checked; sha256 {digest.hexdigest()[:12]}, checked {input_sha256[:12]}); "
                         "nothing was published")
    _publish(partial, output)
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    wall = time.perf_counter() - t0
    summary = {"articles": n_articles, "resumed_after": resumed, "scored_now": scored, "wall_s": wall,
               "articles_per_s": scored / wall if wall and scored else None,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "positive_share": state["positive"] / n_articles}
    if with_labels:
        summary["label_error"] = state["abs_error_sum"] / n_articles
    return summary
