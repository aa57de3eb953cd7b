"""A synthetic multilingual dataset in the study's input format, for the demo and the tests.

Articles are assembled from short sentences written for this project in six languages.
Each of the three dimensions has "signal" sentences; an article's score on a dimension
grows with how many of its signal sentences it carries (plus seeded noise), so a probe
on meaningful embeddings can learn it and a train-mean predictor cannot.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from study.artifacts import atomic_path

DIMENSIONS = ["climate_relevance", "technical_depth", "optimism"]

# language -> dimension -> signal sentences; plus "filler" sentences that carry no signal.
SENTENCES = {
    "en": {
        "climate_relevance": ["The plan cuts carbon emissions from coal power plants.",
                              "Rising sea levels threaten the coastal towns.",
                              "The city invests in solar panels and wind turbines."],
        "technical_depth": ["The battery cells reach an energy density of 300 watt-hours per kilogram.",
                            "Engineers measured the efficiency of the electrolyser in a controlled test.",
                            "The paper reports the error rate of the new sensor design."],
        "optimism": ["Residents celebrate the success of the new project.",
                     "The results exceeded every expectation of the team.",
                     "Volunteers say the future of the village looks bright."],
        "filler": ["The meeting took place on Tuesday afternoon.", "A spokesperson answered questions from the press.",
                   "The report was published last week.", "More details will follow in the coming days."],
    },
    "fr": {
        "climate_relevance": ["Le plan réduit les émissions de carbone des centrales à charbon.",
                              "La montée du niveau de la mer menace les villes côtières.",
                              "La ville investit dans des panneaux solaires et des éoliennes."],
        "technical_depth": ["Les cellules de batterie atteignent une densité de 300 wattheures par kilogramme.",
                            "Les ingénieurs ont mesuré le rendement de l'électrolyseur lors d'un essai contrôlé.",
                            "L'article indique le taux d'erreur du nouveau capteur."],
        "optimism": ["Les habitants célèbrent le succès du nouveau projet.",
                     "Les résultats ont dépassé toutes les attentes de l'équipe.",
                     "Les bénévoles disent que l'avenir du village est radieux."],
        "filler": ["La réunion a eu lieu mardi après-midi.", "Un porte-parole a répondu aux questions de la presse.",
                   "Le rapport a été publié la semaine dernière.", "D'autres détails suivront dans les prochains jours."],
    },
    "es": {
        "climate_relevance": ["El plan reduce las emisiones de carbono de las centrales de carbón.",
                              "La subida del nivel del mar amenaza a los pueblos costeros.",
                              "La ciudad invierte en paneles solares y turbinas eólicas."],
        "technical_depth": ["Las celdas de batería alcanzan una densidad de 300 vatios hora por kilogramo.",
                            "Los ingenieros midieron la eficiencia del electrolizador en una prueba controlada.",
                            "El artículo informa la tasa de error del nuevo sensor."],
        "optimism": ["Los vecinos celebran el éxito del nuevo proyecto.",
                     "Los resultados superaron todas las expectativas del equipo.",
                     "Los voluntarios dicen que el futuro del pueblo es brillante."],
        "filler": ["La reunión tuvo lugar el martes por la tarde.", "Un portavoz respondió a las preguntas de la prensa.",
                   "El informe se publicó la semana pasada.", "Se darán más detalles en los próximos días."],
    },
    "pt": {
        "climate_relevance": ["O plano reduz as emissões de carbono das centrais a carvão.",
                              "A subida do nível do mar ameaça as cidades costeiras.",
                              "A cidade investe em painéis solares e turbinas eólicas."],
        "technical_depth": ["As células da bateria atingem uma densidade de 300 watts-hora por quilograma.",
                            "Os engenheiros mediram a eficiência do eletrolisador num teste controlado.",
                            "O artigo indica a taxa de erro do novo sensor."],
        "optimism": ["Os moradores celebram o sucesso do novo projeto.",
                     "Os resultados superaram todas as expectativas da equipa.",
                     "Os voluntários dizem que o futuro da aldeia é promissor."],
        "filler": ["A reunião decorreu na terça-feira à tarde.", "Um porta-voz respondeu às perguntas da imprensa.",
                   "O relatório foi publicado na semana passada.", "Mais detalhes serão divulgados nos próximos dias."],
    },
    "nl": {
        "climate_relevance": ["Het plan vermindert de CO2-uitstoot van kolencentrales.",
                              "De stijgende zeespiegel bedreigt de kustdorpen.",
                              "De stad investeert in zonnepanelen en windturbines."],
        "technical_depth": ["De batterijcellen halen een energiedichtheid van 300 wattuur per kilogram.",
                            "Ingenieurs maten het rendement van de elektrolyser in een gecontroleerde test.",
                            "Het artikel meldt het foutpercentage van de nieuwe sensor."],
        "optimism": ["Bewoners vieren het succes van het nieuwe project.",
                     "De resultaten overtroffen alle verwachtingen van het team.",
                     "Vrijwilligers zeggen dat de toekomst van het dorp er goed uitziet."],
        "filler": ["De vergadering vond dinsdagmiddag plaats.", "Een woordvoerder beantwoordde vragen van de pers.",
                   "Het rapport werd vorige week gepubliceerd.", "Meer details volgen in de komende dagen."],
    },
    "de": {
        "climate_relevance": ["Der Plan senkt die CO2-Emissionen der Kohlekraftwerke.",
                              "Der steigende Meeresspiegel bedroht die Küstenorte.",
                              "Die Stadt investiert in Solaranlagen und Windräder."],
        "technical_depth": ["Die Batteriezellen erreichen eine Energiedichte von 300 Wattstunden pro Kilogramm.",
                            "Ingenieure maßen den Wirkungsgrad des Elektrolyseurs in einem kontrollierten Test.",
                            "Der Bericht nennt die Fehlerrate des neuen Sensors."],
        "optimism": ["Die Bewohner feiern den Erfolg des neuen Projekts.",
                     "Die Ergebnisse übertrafen alle Erwartungen des Teams.",
                     "Freiwillige sagen, die Zukunft des Dorfes sehe gut aus."],
        "filler": ["Das Treffen fand am Dienstagnachmittag statt.", "Ein Sprecher beantwortete Fragen der Presse.",
                   "Der Bericht wurde letzte Woche veröffentlicht.", "Weitere Einzelheiten folgen in den nächsten Tagen."],
    },
}
LANGUAGE_WEIGHTS = {"en": 0.5, "fr": 0.1, "es": 0.1, "pt": 0.1, "nl": 0.1, "de": 0.1}
TITLES = {"en": "News", "fr": "Actualités", "es": "Noticias", "pt": "Notícias", "nl": "Nieuws", "de": "Nachrichten"}


def make_article(rng: np.random.Generator, index: int, language: str | None = None) -> dict:
    langs = list(LANGUAGE_WEIGHTS)
    lang = language or str(rng.choice(langs, p=list(LANGUAGE_WEIGHTS.values())))
    bank = SENTENCES[lang]
    counts = rng.integers(0, 4, size=len(DIMENSIONS))   # signal sentences per dimension, 0..3
    sentences = [bank[d][int(rng.integers(0, 3))] for d, c in zip(DIMENSIONS, counts) for _ in range(c)]
    sentences += [bank["filler"][int(rng.integers(0, 4))] for _ in range(int(rng.integers(1, 4 + 8 * (index % 5 == 0))))]
    rng.shuffle(sentences)
    labels = np.clip(1.0 + 2.5 * counts + rng.normal(0, 0.5, size=len(DIMENSIONS)), 0, 10).round(1)
    return {"id": f"demo_{index:05d}", "title": f"{TITLES[lang]} {index}", "content": " ".join(sentences),
            "url": f"https://example.org/demo/{index}", "language": lang, "labels": labels.tolist(),
            "dimension_names": list(DIMENSIONS)}


def write_demo_dataset(folder: str | Path, n_train: int = 300, n_val: int = 80, n_test: int = 120,
                       seed: int = 42) -> Path:
    """Write train/val/test.jsonl under `folder` (deterministic for a seed)."""
    return _write_splits(folder, (n_train, n_val, n_test), seed, make_article)


def _write_splits(folder: str | Path, sizes: tuple[int, int, int], seed: int, make) -> Path:
    """train/val/test.jsonl under `folder`, `sizes` articles each, article `index` made by `make(rng, index)`
    from one generator seeded with `seed`."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    index = 0
    for split, n in zip(("train", "val", "test"), sizes):
        with atomic_path(folder / f"{split}.jsonl", "w") as fh:
            for _ in range(n):
                fh.write(json.dumps(make(rng, index), ensure_ascii=False) + "\n")
                index += 1
    return folder


YES_NO_NAME = "hopeful_climate"   # the yes/no demo's one label
YES_NO_RULE = "yes where the article's climate_relevance score is >= 5 and its optimism score >= 3.5"


def write_demo_yes_no(folder: str | Path, n_train: int = 200, n_val: int = 60, n_test: int = 100,
                      seed: int = 7) -> Path:
    """The yes/no demo (task: classification): articles made like the scored demo's, labelled 1 when they
    carry climate signal sentences (score >= 5) and some optimism (>= 3.5), else 0. Writes
    train/val/test.jsonl and `dataset.yaml` (task: classification) under `folder` (deterministic)."""
    import yaml

    from study.data import DATASET_FILE

    def make_yes_no(rng, index):
        article = make_article(rng, index)
        scores = dict(zip(DIMENSIONS, article["labels"]))
        yes = int(scores["climate_relevance"] >= 5 and scores["optimism"] >= 3.5)
        return {**article, "id": f"demo_yes_no_{index:05d}", "labels": [yes], "dimension_names": [YES_NO_NAME]}

    folder = _write_splits(folder, (n_train, n_val, n_test), seed, make_yes_no)
    with atomic_path(folder / DATASET_FILE, "w") as fh:
        yaml.safe_dump({"task": "classification", "description": f"synthetic demo: {YES_NO_NAME} = {YES_NO_RULE}"},
                       fh, sort_keys=False)
    return folder
