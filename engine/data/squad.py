"""SQuAD v1.1-format QA (XQuAD shipped, or translated SQuAD): training pairs and paragraph retrieval.

Sources, by ``path``:

* ``None``: the shipped XQuAD (``assets/data/xquad/xquad.<lang>.json.xz``).
* a folder: one SQuAD-format file per language named ``<anything>.<lang>.json``
  or ``<lang>.json`` (optionally ``.xz``/``.gz``), e.g. a translate-train
  SQuAD, or LAReQA's ``xquad-r`` folder, whose paragraphs also hold
  ``sentence_breaks`` (``[start, end)`` character offsets of each sentence).
* ``hf:NAME`` or ``hf:NAME:CONFIG``: a Hugging Face dataset with SQuAD fields
  (``id, question, context, answers``; ``title`` optional), loaded per
  language with ``CONFIG`` (default ``{lang}``; e.g. ``hf:google/xquad:xquad.{lang}``),
  all of its splits concatenated. Without ``title``, each paragraph is its
  own article. A ``CONFIG`` ending in ``.parquet``, ``.jsonl`` or ``.json``
  names the repo's data files instead (globs allowed, e.g.
  ``hf:google/xquad:xquad.{lang}/*.parquet``), read through
  :mod:`engine.data.hub` like every hub source (a data folder too); that is
  the way to a repo that ships a loading script, which ``datasets`` >= 4
  refuses. ``NAME`` may be a local folder in the repo's layout.

A parallel group is one question id in every chosen language; only ids
present in all of them are kept (XQuAD: all 1190). The positive passage of a
question is the sentence of its context that holds the answer (first answer,
``answer_start`` offset; see :mod:`engine.data.sentences`). An offset that
does not point at the answer text is moved to the nearest occurrence; a
question whose answer is not in its context at all is skipped (logged).
A paragraph with ``sentence_breaks`` is cut at those breaks instead of by
our splitter (they are LAReQA's answer candidates; one sentence may answer
several questions).
Offsets index the raw text, so texts are NFC-normalised (and stray U+FEFF
removed) only after cutting.

Splits: by article, the same for every language and for XQuAD-R
(:func:`article_split`): every 4th article by sorted title is ``eval``;
of the others, every 4th is ``dev`` (the held-out groups of model selection
and the dev loss) and the rest ``train``, so no dev group is in a training
subset of any size. ``nodev`` (train + eval) and ``all`` are what a run trains
on when it evaluates on neither XQuAD nor XQuAD-R (with and without a dev loss;
:meth:`vocabulary.datasets.DatasetInfo.train_split`). A group's ``passage_ids`` are its answer sentences' ids.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.evalset import build_eval_set
from engine.data.files import label, logical_name, nfc, quoted, read_json, source_root
from engine.data.hub import HubFiles, locate, rows
from engine.data.sentences import Span, containing, merge_across, sentence_spans
from vocabulary.config import EvalSpec
from vocabulary.languages import LANGUAGE_NAMES, to_iso
from vocabulary.records import EvalSet, ParallelGroup, Passage, Query, TrainingSet

log = logging.getLogger(__name__)

DATASET = "xquad"
HUB_PREFIX = "hf:"
#: A ``CONFIG`` ending so names data files in the repo (read through engine.data.hub), not a config.
DATA_FILE_SUFFIXES: tuple[str, ...] = (".parquet", ".jsonl", ".json")
#: Every EVAL_EVERY-th article (by sorted title) is held out for evaluation.
EVAL_EVERY = 4
#: Of the remaining articles, every DEV_EVERY-th (by sorted title) is held out as the dev split.
DEV_EVERY = 4
_FILE_NAME = re.compile(r"^(?:.+\.)?(?P<lang>[A-Za-z_]+)\.json$")


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    text: str
    answer: str  # raw answer text, whitespace trimmed
    start: int  # offset of ``answer`` in the raw context


@dataclass(frozen=True)
class SquadParagraph:
    context: str  # raw, not normalised: answer offsets index it
    questions: tuple[SquadQuestion, ...]
    breaks: tuple[Span, ...] | None = None  # LAReQA's sentence_breaks, when the file has them

    def sentences(self, language: str) -> list[Span]:
        """LAReQA's sentence breaks, or our splitter's spans merged so that no answer crosses a boundary."""
        if self.breaks is not None:
            return list(self.breaks)
        answers = [(q.start, q.start + len(q.answer)) for q in self.questions]
        return merge_across(sentence_spans(self.context, language), answers)


@dataclass(frozen=True)
class SquadArticle:
    title: str
    paragraphs: tuple[SquadParagraph, ...]


@dataclass(frozen=True)
class Unit:
    """A retrievable piece of one language's contexts: a paragraph or a sentence (NFC text)."""

    id: str
    text: str


@dataclass(frozen=True)
class IndexedQuestion:
    text: str
    paragraph: Unit
    sentence: Unit


@dataclass(frozen=True)
class LanguageIndex:
    """One language's questions, paragraphs and sentences, restricted to a split's articles."""

    paragraphs: tuple[Unit, ...]
    sentences: tuple[Unit, ...]
    questions: Mapping[str, IndexedQuestion]  # question id -> question, in file order


def article_split(titles: Iterable[str], split: str) -> frozenset[str]:
    """The article titles in ``split``: sorted, every 4th is ``eval``, of the rest every 4th ``dev``, else ``train``.

    The one split function of XQuAD and XQuAD-R: train, dev and eval
    articles never overlap (``all`` is their union), and the same title
    lands in the same split for every language (XQuAD and translate-train
    SQuAD keep English titles everywhere).
    """
    ordered = sorted(set(titles))
    held_out = ordered[EVAL_EVERY - 1 :: EVAL_EVERY]
    rest = [title for title in ordered if title not in set(held_out)]
    dev = rest[DEV_EVERY - 1 :: DEV_EVERY]
    splits = {
        "eval": frozenset(held_out),
        "dev": frozenset(dev),
        "train": frozenset(rest) - frozenset(dev),
        "nodev": frozenset(ordered) - frozenset(dev),
        "all": frozenset(ordered),
    }
    if split not in splits:
        raise DataError(f"{DATASET}: unknown split {split!r}; use one of {', '.join(splits)}")
    return splits[split]


def load_training_set(languages: Sequence[str], split: str = "train", path: str | None = None) -> TrainingSet:
    """Groups of (question, answer sentence, paragraph) in every language, in file order, with sentence ids."""
    check_split(DATASET, split)
    codes, indexes = split_indexes(DATASET, languages, split, path)
    groups = tuple(
        ParallelGroup(
            id=qid,
            queries={lang: indexes[lang].questions[qid].text for lang in codes},
            passages={lang: indexes[lang].questions[qid].sentence.text for lang in codes},
            context={lang: indexes[lang].questions[qid].paragraph.text for lang in codes},
            passage_ids={lang: indexes[lang].questions[qid].sentence.id for lang in codes},
        )
        for qid in common_questions(indexes, codes)
    )
    return TrainingSet(name=f"{DATASET}/{split}", languages=codes, groups=groups)


def load_eval_set(spec: EvalSpec) -> EvalSet:
    """Question -> paragraph retrieval over every paragraph of the split in all chosen languages."""
    return qa_eval_set(spec, DATASET, "paragraph")


def qa_eval_set(spec: EvalSpec, dataset_id: str, unit: Literal["paragraph", "sentence"]) -> EvalSet:
    """Each question (in each language) is relevant to its ``unit`` in EVERY chosen language.

    The corpus is every ``unit`` of the split's articles in all chosen
    languages; groups are question ids, so ``max_queries`` keeps whole groups.
    """
    check_split(dataset_id, spec.split)
    codes, indexes = split_indexes(dataset_id, spec.languages, spec.split, spec.path)
    qids = common_questions(indexes, codes)
    queries, qrels, groups = [], {}, {}
    for lang in codes:
        for qid in qids:
            query_id = f"{lang}:{qid}"
            queries.append(Query(query_id, indexes[lang].questions[qid].text, lang))
            qrels[query_id] = {getattr(indexes[other].questions[qid], unit).id: 1 for other in codes}
            groups[query_id] = qid
    units = "paragraphs" if unit == "paragraph" else "sentences"
    passages = [Passage(u.id, u.text, lang) for lang in codes for u in getattr(indexes[lang], units)]
    return build_eval_set(spec.label, queries, passages, qrels, groups, spec.max_queries)


def split_indexes(
    dataset_id: str, languages: Sequence[str], split: str, path: str | None
) -> tuple[tuple[str, ...], dict[str, LanguageIndex]]:
    """(ISO codes, code -> index of the split's articles), after reading every chosen language."""
    codes, articles = read_squad(dataset_id, languages, path)
    titles = article_split((a.title for lang in codes for a in articles[lang]), split)
    return codes, {lang: index_language(articles[lang], lang, titles) for lang in codes}


def common_questions(indexes: Mapping[str, LanguageIndex], codes: Sequence[str]) -> list[str]:
    """Question ids present in every language, in the first language's file order."""
    first = indexes[codes[0]].questions
    return [qid for qid in first if all(qid in indexes[lang].questions for lang in codes[1:])]


def index_language(articles: Sequence[SquadArticle], language: str, titles: frozenset[str]) -> LanguageIndex:
    """Cut the contexts of the articles in ``titles`` into paragraphs and sentences, ids by position.

    Ids are ``<lang>:<article>.<paragraph>[.<sentence>]`` (indices in the
    file): stable, unique even when titles repeat, and free of spaces so they
    survive TREC run files.
    """
    paragraphs: list[Unit] = []
    sentences: list[Unit] = []
    questions: dict[str, IndexedQuestion] = {}
    for a, article in enumerate(articles):
        if article.title not in titles:
            continue
        for p, paragraph in enumerate(article.paragraphs):
            paragraph_unit = Unit(f"{language}:{a}.{p}", _clean(paragraph.context))
            paragraphs.append(paragraph_unit)
            spans = paragraph.sentences(language)
            units = [Unit(f"{language}:{a}.{p}.{s}", _clean(paragraph.context[start:end])) for s, (start, end) in enumerate(spans)]
            sentences.extend(units)
            for question in paragraph.questions:
                try:
                    sentence = units[containing(spans, question.start)]
                except ValueError:
                    raise DataError(f"{language}: question {question.id}: its answer starts at {question.start}, "
                                    "outside every sentence break of its paragraph") from None
                questions[question.id] = IndexedQuestion(_clean(question.text), paragraph_unit, sentence)
    return LanguageIndex(tuple(paragraphs), tuple(sentences), questions)


def _clean(text: str) -> str:
    """NFC, without the stray zero-width U+FEFF that 10 of the 12 XQuAD files hold (cut after offsets are applied)."""
    return nfc(text).replace("\ufeff", "").strip()


def read_squad(
    dataset_id: str, languages: Sequence[str], path: str | None
) -> tuple[tuple[str, ...], dict[str, list[SquadArticle]]]:
    """(ISO codes, code -> articles) from the shipped XQuAD, a folder, or ``hf:`` (see the module doc)."""
    if path is not None and path.startswith(HUB_PREFIX):
        codes = check_languages(dataset_id, languages, LANGUAGE_NAMES)
        return codes, {lang: _read_hub(path, lang) for lang in codes}
    root = source_root(DATASET, path)
    files = _language_files(root)
    codes = check_languages(dataset_id, languages, files, where=f" in {root}")
    return codes, {lang: parse_squad(read_json(files[lang], normalise=False), label(files[lang])) for lang in codes}


def parse_squad(data: Any, where: str) -> list[SquadArticle]:
    """SQuAD v1.1 JSON -> articles; questions without a usable answer are skipped (logged)."""
    articles = []
    skipped = 0
    for a, article in enumerate(_get(data, "data", where)):
        at = f"{where}: data[{a}]"
        paragraphs = []
        for p, paragraph in enumerate(_get(article, "paragraphs", at)):
            context = _get(paragraph, "context", f"{at}.paragraphs[{p}]")
            questions = []
            for q, qa in enumerate(_get(paragraph, "qas", f"{at}.paragraphs[{p}]")):
                question = _question(qa, context, f"{at}.paragraphs[{p}].qas[{q}]")
                if question is None:
                    skipped += 1
                else:
                    questions.append(question)
            breaks = _breaks(paragraph, len(context), f"{at}.paragraphs[{p}]")
            paragraphs.append(SquadParagraph(context, tuple(questions), breaks))
        articles.append(SquadArticle(str(_get(article, "title", at)), tuple(paragraphs)))
    if skipped:
        log.warning("%s: skipped %d questions whose answer is not in their context", where, skipped)
    if not any(p.questions for article in articles for p in article.paragraphs):
        raise DataError(f"{where} is empty: no question with an answer; check that it is SQuAD v1.1 format")
    return articles


def _breaks(paragraph: dict, length: int, where: str) -> tuple[Span, ...] | None:
    """LAReQA's ``sentence_breaks`` of a paragraph, checked to be ordered spans inside its context."""
    if "sentence_breaks" not in paragraph:
        return None
    raw = paragraph["sentence_breaks"]
    spans = []
    previous_end = 0
    for item in raw if isinstance(raw, list) else [None]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) for v in item)
                and previous_end <= item[0] < item[1] <= length):
            raise DataError(f"{where}: sentence_breaks must be ordered [start, end] offsets inside the context, "
                            f"got {quoted(item)}")
        spans.append((item[0], item[1]))
        previous_end = item[1]
    return tuple(spans)


def _question(qa: Any, context: str, where: str) -> SquadQuestion | None:
    answers = _get(qa, "answers", where)
    if not answers:
        return None
    answer = str(_get(answers[0], "text", f"{where}.answers[0]"))
    start = _locate(context, answer, int(_get(answers[0], "answer_start", f"{where}.answers[0]")))
    trimmed = answer.strip()
    if start is None or not trimmed:
        return None
    return SquadQuestion(str(_get(qa, "id", where)), str(_get(qa, "question", where)), trimmed, start + answer.index(trimmed))


def _locate(context: str, answer: str, start: int) -> int | None:
    """``start`` if the answer is there, else its nearest occurrence, else None."""
    if context[start : start + len(answer)] == answer:
        return start
    found = [m.start() for m in re.finditer(re.escape(answer), context)]
    return min(found, key=lambda position: abs(position - start)) if found else None


def _get(record: Any, name: str, where: str) -> Any:
    if not isinstance(record, dict) or name not in record:
        raise DataError(f"{where}: missing field {name!r}; is this SQuAD v1.1 format?")
    return record[name]


def _language_files(root: Path) -> dict[str, Path]:
    """ISO code -> the one ``<anything>.<lang>.json[.xz|.gz]`` file of ``root``."""
    files: dict[str, list[Path]] = {}
    for candidate in sorted(root.iterdir()):
        match = _FILE_NAME.match(logical_name(candidate))
        if match and candidate.is_file():
            try:
                files.setdefault(to_iso(match["lang"]), []).append(candidate)
            except ValueError:
                continue  # not a language suffix (e.g. ``dataset_info.json``)
    for lang, paths in files.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise DataError(f"{root}: {len(paths)} files for language {lang!r} ({names}); keep one per language")
    return {lang: paths[0] for lang, paths in files.items()}


def _read_hub(path: str, language: str) -> list[SquadArticle]:
    """A hub (or hub-layout) dataset's rows: its data files when ``CONFIG`` names them, else its config."""
    name, _, config = path[len(HUB_PREFIX) :].partition(":")
    config = (config or "{lang}").format(lang=language)
    if config.endswith(DATA_FILE_SUFFIXES):
        local = Path(name).expanduser()
        files = locate(HubFiles(name, config), local if local.is_dir() else None)
        records = [row for file in files for _, row in rows(file, normalise=False)]
        return parse_squad(_squad_from_rows(records, path), f"{path} ({config})")
    try:
        import datasets

        # Only a repo without a loading script gets here (datasets >= 4 refuses scripts): its data files,
        # by the config its card declares.
        loaded = datasets.load_dataset(name, config)
    except Exception as exc:  # any hub/network/cache failure means the same thing to the user
        raise DataNotFoundError(
            f"{path}: cannot load {name!r} config {config!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); go online once so datasets "
            "caches it, name its data files instead (hf:NAME:PATH.parquet, {lang} allowed), "
            "or pass a folder of SQuAD-format JSON files as path"
        ) from None
    records = [row for split_name in loaded for row in loaded[split_name]]
    return parse_squad(_squad_from_rows(records, path), f"{path} ({config})")


def _squad_from_rows(rows: Iterable[Mapping[str, Any]], where: str) -> dict[str, Any]:
    """Flat HF rows (one per question) -> nested SQuAD JSON, grouping by title, then context."""
    articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
    first_question: dict[str, str] = {}
    for number, row in enumerate(rows):
        at = f"{where} row {number}"
        context = _get(row, "context", at)
        qid = str(_get(row, "id", at))
        title = row.get("title") or first_question.setdefault(context, qid)
        answers = _get(row, "answers", at)
        qa = {
            "id": qid,
            "question": _get(row, "question", at),
            "answers": [
                {"text": text, "answer_start": start}
                for text, start in zip(_get(answers, "text", at), _get(answers, "answer_start", at))
            ],
        }
        articles.setdefault(title, {}).setdefault(context, []).append(qa)
    return {
        "data": [
            {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
            for title, paragraphs in articles.items()
        ]
    }
