"""AfriQA sw/yo: native questions -> gold English Wikipedia passages, plus the English reference.

For each question with a gold passage there are two queries: the native one
(language ``sw``/``yo``, id ``sw:12``) and its human English translation
(language ``en``, id ``sw:12:en``), both relevant to the same passage. The
English query is the monolingual reference: the gap between the two is the
cost of crossing languages. The corpus is every gold passage of the split
(title + context; identical passages are stored once, relevant to each of
their questions), so it is small and the task is easier than open retrieval.

Upstream files are JSON Lines despite ``.json``. Gold passages exist only for
sw test and yo train/test. Skipped: gold records with no context (yo train
id 189 has ``context: null``, yo test id 205 an empty one). Answers are not
needed for retrieval and are not parsed.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.data.errors import DataError, DataNotFoundError, check_languages, check_split
from engine.data.evalset import build_eval_set
from engine.data.files import field, find_file, label, logical_name, read_jsonl, source_root
from vocabulary.config import EvalSpec
from vocabulary.languages import to_iso
from vocabulary.records import EvalSet, Passage, Query

DATASET = "afriqa"
_GOLD_NAME = re.compile(r"^gold_span_passages\.afriqa\.(?P<code>[a-z]+)\.en\.(?P<split>[a-z]+)\.json$")


def load_eval_set(spec: EvalSpec) -> EvalSet:
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
    queries: list[Query] = []
    passages: list[Passage] = []
    qrels: dict[str, dict[str, int]] = {}
    groups: dict[str, str] = {}
    for lang in codes:
        gold_path = gold_files[(lang, spec.split)]
        code = _GOLD_NAME.match(logical_name(gold_path))["code"]
        questions = _read_queries(find_file(root / "queries", f"queries.afriqa.{code}.en.{spec.split}.json"))
        passage_of: dict[tuple[str, str], str] = {}
        for number, record in read_jsonl(gold_path):
            context = field(record, "context", gold_path, number)
            if not context:
                continue
            source_id = str(field(record, "id", gold_path, number))
            if source_id not in questions:
                raise DataError(f"{label(gold_path)} line {number}: id {source_id} is not in the {code} {spec.split} queries")
            title = field(record, "title", gold_path, number) or ""
            passage_id = passage_of.get((title, context))
            if passage_id is None:
                passage_id = passage_of[(title, context)] = f"{lang}:passage:{source_id}"
                passages.append(Passage(passage_id, context, "en", title))
            native, english = questions[source_id]
            for query in (Query(f"{lang}:{source_id}", native, lang), Query(f"{lang}:{source_id}:en", english, "en")):
                queries.append(query)
                qrels[query.id] = {passage_id: 1}
                groups[query.id] = f"{lang}:{source_id}"
    return build_eval_set(spec.label, queries, passages, qrels, groups, spec.max_queries)


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
