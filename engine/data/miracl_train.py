"""MIRACL train (sw; yo has none) as a monolingual training source: query, judged positive, judged negative.

The topics and qrels are the shipped ones :mod:`engine.data.miracl` reads;
the passage texts come from the same corpus (``path``: a local file or
folder, else the Hub). A group is one query with its first judged positive
and first judged negative (qrels order), so every pair is a triplet like
mMARCO's; the 1,100 of 1,901 sw train queries without a judged negative are
left out (the registry declares the 801 kept). Groups have one language,
so this source only makes X-X batches (the sampler says so when a cross
batch is asked of it). Training on it makes sw results in-language, not
zero-shot.
"""

from __future__ import annotations

from typing import Sequence

from engine.data.errors import DataError, check_languages, check_split
from engine.data.files import source_root
from engine.data.miracl import _corpus, _read_topics
from engine.data.stream import StreamedTrainingSet
from vocabulary.records import ParallelGroup

DATASET = "miracl-train"
_SHIPPED = "miracl"


def load_training_set(languages: Sequence[str], split: str = "train", path: str | None = None) -> StreamedTrainingSet:
    check_split(DATASET, split)
    codes = check_languages(DATASET, languages)
    triplets = [(lang, *triplet) for lang in codes for triplet in _triplets(lang)]
    return StreamedTrainingSet(
        name=f"{DATASET}/{split}", languages=codes,
        read=lambda _min_languages: iter(triplets),
        resolve=lambda chosen: _groups(chosen, path, len(codes)),
        size=len(triplets), monolingual=True,
    )


def _triplets(lang: str) -> list[tuple[str, str, str, str]]:
    """(qid, query, positive docid, negative docid) of the queries with both judgements."""
    topics, judgements = _read_topics(source_root(_SHIPPED, None), lang, "train")
    positive: dict[str, str] = {}
    negative: dict[str, str] = {}
    for qid, docid, relevance in judgements:
        (positive if relevance > 0 else negative).setdefault(qid, docid)
    return [(qid, text, positive[qid], negative[qid]) for qid, text in topics if qid in positive and qid in negative]


def _groups(chosen: Sequence[tuple[str, str, str, str, str]], path: str | None, language_count: int) -> tuple[ParallelGroup, ...]:
    """Groups of the chosen triplets, their passages read from one pass over each language's corpus."""
    texts: dict[str, dict[str, str]] = {}
    for lang in sorted({lang for lang, *_ in chosen}):
        needed = {docid for other, _, _, pos, neg in chosen if other == lang for docid in (pos, neg)}
        found = texts.setdefault(lang, {})
        for docid, _title, text in _corpus(lang, path, language_count):
            if docid in needed:
                found[docid] = text
        missing = needed - set(found)
        if missing:
            raise DataError(f"{DATASET}: {len(missing)} judged {lang} passages (e.g. {sorted(missing)[0]}) are not "
                            "in the corpus given; pass the full MIRACL corpus")
    return tuple(
        ParallelGroup(id=f"{lang}:{qid}", queries={lang: query}, passages={lang: texts[lang][pos]},
                      passage_ids={lang: f"{lang}:{pos}"}, negatives={lang: texts[lang][neg]},
                      negative_ids={lang: f"{lang}:{neg}"})
        for lang, qid, query, pos, neg in chosen
    )
