"""AfriQA sw/yo: native questions -> English Wikipedia passages, plus the English reference.

For each question with a gold passage there are two queries: the native one
(language ``sw``/``yo``, id ``sw:12``) and its human English translation
(language ``en``, id ``sw:12:en``). The English query is the monolingual
reference: the gap between the two is the cost of crossing languages.

Two corpora (the eval set's label says which):

* Gold passages only (the default): every gold passage of the split (title +
  context; identical passages are stored once, relevant to each of their
  questions), relevant to its questions. A closed set of about one passage
  per question, so it is easy, near its ceiling.
* AfriQA's retrieval collection (``EvalSpec.corpus``): the 100-word
  Wikipedia passages of ``masakhane_wiki_100`` (``corpus.jsonl`` lines
  ``{"docid", "text", "title"}``, a file, a folder of such shards, or
  ``hf:NAME`` for the hub copy's data file through :mod:`engine.data.hub`,
  as ``datasets`` no longer runs loading scripts). The gold passages are not
  added. The collection has no qrels, so relevance is AfriQA's own rule
  (its retrieval scores answer-string top-k accuracy): a passage is relevant
  to a question when its text holds one of the question's English answers
  (the gold record's ``answer_pivot``) as a run of whole tokens, matched as
  DPR's ``has_answer`` does (its tokenizer, lower-cased, NFD). ``Success@k`` is then AfriQA's top-k
  accuracy. A question whose answer no passage holds is judged with nothing
  relevant, so it scores 0 instead of dropping out.

Upstream files are JSON Lines despite ``.json``. Gold passages exist only for
sw test and yo train/test. Skipped: gold records with no context (yo train
id 189 has ``context: null``, yo test id 205 an empty one).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import regex

from engine.data.corpus import stored
from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.evalset import build_eval_set
from engine.data.files import field, find_file, label, logical_name, not_a_file, read_jsonl, source_root, text_field
from engine.data.hub import HubFiles, hub_passages
from vocabulary.config import EvalSpec
from vocabulary.languages import to_iso
from vocabulary.records import EvalSet, Passage, Query

DATASET = "afriqa"
_GOLD_NAME = re.compile(r"^gold_span_passages\.afriqa\.(?P<code>[a-z]+)\.en\.(?P<split>[a-z]+)\.json$")
HUB_PREFIX = "hf:"
#: The English collection in the hub copy (ToluClassics/masakhane_wiki_100), as AfriQA's README links it.
HUB_COLLECTION_FILE = "masakhane_wiki_100-english/corpus.jsonl"
#: The judgement of a question whose answer no passage of the collection holds (judged, nothing relevant).
NO_ANSWER_PASSAGE = "no-passage-holds-the-answer"
#: DPR's SimpleTokenizer (dpr/utils/tokenizers.py), which its has_answer and AfriQA's retrieval scoring use.
_TOKEN = regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]", flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)


@dataclass(frozen=True)
class GoldQuestion:
    language: str
    source_id: str
    native: str
    english: str
    title: str
    context: str
    answers: tuple[str, ...]  # English (pivot) answer spans

    @property
    def queries(self) -> tuple[Query, Query]:
        return (Query(f"{self.language}:{self.source_id}", self.native, self.language),
                Query(f"{self.language}:{self.source_id}:en", self.english, "en"))


def load_eval_set(spec: EvalSpec) -> EvalSet:
    questions = read_gold_questions(spec)
    if spec.corpus is None:
        return _gold_eval_set(spec, questions)
    return _collection_eval_set(spec, questions)


def read_gold_questions(spec: EvalSpec) -> list[GoldQuestion]:
    """Every question of the split's gold files (with a context) in the chosen languages."""
    check_split(DATASET, spec.split)
    root = source_root(DATASET, spec.path)
    gold_files = _gold_files(root)
    codes = check_languages(DATASET, spec.languages, {lang for lang, _ in gold_files}, where=f" in {root}")
    missing = [lang for lang in codes if (lang, spec.split) not in gold_files]
    if missing:
        have = ", ".join(f"{lang} {split}" for lang, split in sorted(gold_files))
        raise DataNotFoundError(
            f"{DATASET}: no gold passages for {', '.join(missing)} {spec.split}; available: {have}"
        )
    questions: list[GoldQuestion] = []
    for lang in codes:
        gold_path = gold_files[(lang, spec.split)]
        code = _GOLD_NAME.match(logical_name(gold_path))["code"]
        texts = _read_queries(find_file(root / "queries", f"queries.afriqa.{code}.en.{spec.split}.json"))
        for number, record in read_jsonl(gold_path):
            context = field(record, "context", gold_path, number)
            if not context:
                continue
            source_id = str(field(record, "id", gold_path, number))
            if source_id not in texts:
                raise DataError(f"{label(gold_path)} line {number}: id {source_id} is not in the {code} {spec.split} queries")
            title = field(record, "title", gold_path, number) or ""
            native, english = texts[source_id]
            questions.append(GoldQuestion(lang, source_id, native, english, title, context,
                                          _pivot_answers(record, gold_path, number)))
    return questions


def _gold_eval_set(spec: EvalSpec, questions: Sequence[GoldQuestion]) -> EvalSet:
    """Each question's two queries against the split's gold passages (one passage per distinct text)."""
    passages: list[Passage] = []
    passage_of: dict[tuple[str, str, str], str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for question in questions:
        key = (question.language, question.title, question.context)
        if key not in passage_of:
            passage_of[key] = f"{question.language}:passage:{question.source_id}"
            passages.append(Passage(passage_of[key], question.context, "en", question.title))
        for query in question.queries:
            qrels[query.id] = {passage_of[key]: 1}
    return _eval_set(spec, questions, passages, qrels)


def _collection_eval_set(spec: EvalSpec, questions: Sequence[GoldQuestion]) -> EvalSet:
    """Each question's two queries against the collection, relevant where a passage holds its answer."""
    passages = stored(Passage(f"wiki:{docid}", text, "en", title) for docid, title, text in read_collection(spec.corpus))
    if not passages:
        raise DataError(f"{DATASET}: the collection {spec.corpus} holds no passages")
    holding = answer_holders(passages, {q.queries[0].id: q.answers for q in questions})
    qrels: dict[str, dict[str, int]] = {}
    for question in questions:
        judged = {pid: 1 for pid in holding.get(question.queries[0].id, ())} or {NO_ANSWER_PASSAGE: 0}
        for query in question.queries:
            qrels[query.id] = judged
    return _eval_set(spec, questions, passages, qrels, absent_languages={NO_ANSWER_PASSAGE: "en"})


def _eval_set(spec: EvalSpec, questions: Sequence[GoldQuestion], passages: Sequence[Passage],
              qrels: dict[str, dict[str, int]], absent_languages: Mapping[str, str] | None = None) -> EvalSet:
    queries = [query for question in questions for query in question.queries]
    groups = {query.id: f"{question.language}:{question.source_id}" for question in questions for query in question.queries}
    return build_eval_set(spec.label, queries, passages, qrels, groups, spec.max_queries, absent_languages)


def _pivot_answers(record: dict, path: Path, number: int) -> tuple[str, ...]:
    pivot = record.get("answer_pivot") or {}
    texts = pivot.get("text") if isinstance(pivot, dict) else None
    if texts is None:
        return ()
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise DataError(f"{label(path)} line {number}: answer_pivot.text must be a list of texts")
    return tuple(t for t in texts if t.strip())


def answer_tokens(text: str) -> tuple[str, ...]:
    """DPR's answer-matching tokens: NFD text cut into letter/number/mark runs and single symbols, lower-cased."""
    return tuple(token.lower() for token in _TOKEN.findall(unicodedata.normalize("NFD", text)))


def answer_holders(passages: Iterable[Passage], answers: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Question key -> ids of the passages whose text holds one of its answers as a run of whole tokens."""
    by_first_token: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for key, texts in answers.items():
        for tokens in {answer_tokens(t) for t in texts} - {()}:
            by_first_token[tokens[0]].append((tokens, key))
    holders: dict[str, list[str]] = defaultdict(list)
    for passage in passages:
        tokens = answer_tokens(passage.text)
        found = {key for i, token in enumerate(tokens) for answer, key in by_first_token.get(token, ())
                 if tokens[i : i + len(answer)] == answer}
        for key in found:
            holders[key].append(passage.id)
    return dict(holders)


def hub_files(name: str) -> HubFiles:
    """The collection file of the hub repo ``name`` (``ToluClassics/masakhane_wiki_100``)."""
    return HubFiles(name, HUB_COLLECTION_FILE)


def read_collection(corpus: str) -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) of a masakhane_wiki_100 collection: a JSONL file, a folder of them, or ``hf:NAME``."""
    if corpus.startswith(HUB_PREFIX):
        yield from hub_passages(hub_files(corpus[len(HUB_PREFIX) :]),
                                instead=f"{DATASET}: cannot read the collection {corpus}: download {HUB_COLLECTION_FILE} "
                                        "and pass the file as corpus")
        return
    path = Path(corpus).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = [f for f in sorted(path.iterdir()) if f.is_file() and logical_name(f).endswith(".jsonl")]
        if not files:
            raise DataNotFoundError(f"{path}: no *.jsonl collection files (plain, .gz or .xz)")
    else:
        raise not_a_file(path, "a collection file") or DataNotFoundError(
            f"{path}: no such collection file or folder; give AfriQA's corpus.jsonl (masakhane_wiki_100) or a folder "
            "of its shards")
    for file in files:
        for number, record in read_jsonl(file):
            yield (text_field(record, "docid", file, number), text_field(record, "title", file, number, optional=True),
                   text_field(record, "text", file, number))


def _gold_files(root: Path) -> dict[tuple[str, str], Path]:
    """(ISO code, split) -> gold-passage file, for what ``root/gold_passages`` holds."""
    folder = root / "gold_passages"
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such folder; give the AfriQA data folder (with queries/ and gold_passages/)")
    files = {}
    for candidate in sorted(folder.iterdir()):
        match = _GOLD_NAME.match(logical_name(candidate))
        if match:
            try:
                files[(to_iso(match["code"]), match["split"])] = candidate
            except ValueError:
                continue  # an AfriQA language this app does not study (e.g. hau)
    return files


def _read_queries(path: Path) -> dict[str, tuple[str, str]]:
    """Query id -> (native question, English translation)."""
    return {
        str(field(record, "id", path, number)): (
            str(field(record, "question", path, number)).strip(),
            str(field(record, "translated_question", path, number)).strip(),
        )
        for number, record in read_jsonl(path)
    }
