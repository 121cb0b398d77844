"""mMARCO (Bonifacio et al. 2021, unicamp-dl/mmarco v2): MS MARCO passage training triples in 14 languages.

Read through ``datasets`` (its ``csv`` builder, streaming), from the Hub's
raw files or from a local folder with the same layout (``path``)::

    triples.train.ids.small.tsv                      qid<TAB>positive pid<TAB>negative pid
    google/queries/train/<name>_queries.train.tsv    qid<TAB>text
    google/collections/<name>_collection.tsv         pid<TAB>text

``<name>`` is mMARCO's language name (``english``, ``german``, ...). The
Hub's loading script cannot run under datasets >= 4, so the raw files are
read directly; both online and offline go through :func:`stream_tsv`.

A group is one query id: mMARCO keeps MS MARCO's query and passage ids in
every language, so the query, its positive and the triple's negative are
parallel by id. The first triple of each query id is used (its negative is
the hard negative). Choosing a subset reads only the triples it needs
(:mod:`engine.data.stream`); the texts of the chosen ids are then collected
by one streamed pass over each language's queries and collection that
stops once every needed id is found. Nothing holds a whole file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.files import nfc
from engine.data.hub import HubFiles, data_dir
from engine.data.stream import StreamedTrainingSet
from vocabulary.records import ParallelGroup

DATASET = "mmarco"
HUB_REPO = "unicamp-dl/mmarco"
#: The raw files of the Hub copy, read by fsspec through datasets.
HUB_ROOT = f"hf://datasets/{HUB_REPO}/data"
TRIPLES = "triples.train.ids.small.tsv"
#: ISO 639-1 -> mMARCO's file-name language.
NAMES: dict[str, str] = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
    "id": "indonesian", "it": "italian", "ja": "japanese", "nl": "dutch", "pt": "portuguese", "ru": "russian",
    "vi": "vietnamese", "zh": "chinese",
}
Triple = tuple[str, str, str]


def load_training_set(languages: Sequence[str], split: str = "train", path: str | None = None) -> StreamedTrainingSet:
    """mMARCO's training triples in ``languages``, from the Hub or the local folder ``path``."""
    check_split(DATASET, split)
    codes = check_languages(DATASET, languages)
    root = _root(path)
    return StreamedTrainingSet(
        name=f"{DATASET}/{split}", languages=codes,
        read=lambda _min_languages: first_triples(root),
        resolve=lambda triples: groups(root, codes, triples),
        count=lambda: sum(1 for _ in first_triples(root)),
    )


def stream_tsv(file: str, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Rows of a header-less, unquoted TSV as text, streamed by ``datasets`` (local path or ``hf://`` URL)."""
    import datasets

    if not file.startswith("hf://") and not Path(file).is_file():
        raise DataNotFoundError(f"{file}: no such file; give the folder that mirrors mMARCO's data/ layout")
    try:
        rows = datasets.load_dataset(
            "csv", data_files={"train": file}, split="train", streaming=True, delimiter="\t",
            column_names=list(columns), quoting=csv.QUOTE_NONE,
            features=datasets.Features({name: datasets.Value("string") for name in columns}),
        )
        for row in rows:
            if any(row[name] is None for name in columns):
                raise DataError(f"{file}: a row has fewer than {len(columns)} tab-separated fields ({row})")
            yield row
    except (DataError, DataNotFoundError):
        raise
    except Exception as exc:  # offline, a changed Hub layout, a broken file: the remedy is the same
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataNotFoundError(f"{file}: cannot be streamed ({cause}); go online, or pass a local folder "
                                "with mMARCO's files as 'mmarco:PATH'") from None


def first_triples(root: str) -> Iterator[Triple]:
    """(qid, positive pid, negative pid) of each query id's first triple, in file order."""
    seen: set[str] = set()
    for row in stream_tsv(f"{root}/{TRIPLES}", ("qid", "positive", "negative")):
        if row["qid"] not in seen:
            seen.add(row["qid"])
            yield row["qid"], row["positive"], row["negative"]


def groups(root: str, languages: Sequence[str], triples: Sequence[Triple]) -> tuple[ParallelGroup, ...]:
    """The chosen triples as parallel groups, their texts looked up in every language."""
    qids = {qid for qid, _, _ in triples}
    pids = {pid for _, positive, negative in triples for pid in (positive, negative)}
    queries, passages = {}, {}
    for lang in languages:
        name = NAMES[lang]
        queries[lang] = _texts(f"{root}/google/queries/train/{name}_queries.train.tsv", qids, "query")
        passages[lang] = _texts(f"{root}/google/collections/{name}_collection.tsv", pids, "passage")
    return tuple(
        ParallelGroup(
            id=qid,
            queries={lang: queries[lang][qid] for lang in languages},
            passages={lang: passages[lang][positive] for lang in languages},
            passage_ids={lang: f"{DATASET}:{positive}" for lang in languages},
            negatives={lang: passages[lang][negative] for lang in languages},
            negative_ids={lang: f"{DATASET}:{negative}" for lang in languages},
        )
        for qid, positive, negative in triples
    )


def _texts(file: str, ids: set[str], kind: str) -> dict[str, str]:
    """id -> NFC text for ``ids``, stopping as soon as all are found; a missing id is a DataError."""
    found: dict[str, str] = {}
    for row in stream_tsv(file, ("id", "text")):
        if row["id"] in ids:
            found[row["id"]] = nfc(row["text"])
            if len(found) == len(ids):
                return found
    missing = sorted(ids - set(found))
    raise DataError(f"{file}: no {kind} with id {missing[0]} ({len(missing)} of the triples' ids are missing); "
                    "the files are incomplete or from different mMARCO versions")


def hub_files(languages: Sequence[str]) -> list[HubFiles]:
    """The hub files the triples and the ``languages``' queries and collections are read from."""
    names = [NAMES[lang] for lang in languages]
    return [HubFiles(HUB_REPO, f"data/{TRIPLES}"),
            *(HubFiles(HUB_REPO, f"data/google/queries/train/{name}_queries.train.tsv") for name in names),
            *(HubFiles(HUB_REPO, f"data/google/collections/{name}_collection.tsv") for name in names)]


def _root(path: str | None) -> str:
    if path is None:
        local = data_dir()
        return str(local / HUB_REPO / "data") if local is not None else HUB_ROOT
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such folder; give the folder that holds {TRIPLES} and google/")
    return str(folder)
