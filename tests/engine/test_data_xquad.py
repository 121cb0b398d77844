"""XQuAD training pairs, question -> paragraph retrieval, and XQuAD-R, on the shipped files."""

from __future__ import annotations

import json
import lzma
import unicodedata

import pytest

from engine.data import DataError, DataNotFoundError, squad, xquad_r
from engine.data.files import DATA_ROOT
from engine.data.hub import DATA_DIR_ENV
from engine.sampling import dev_batches, training_subset
from vocabulary.batching import batch_plan
from vocabulary.config import EvalSpec, RunConfig
from vocabulary.languages import PAPER_TRAIN_LANGUAGES

ALL_XQUAD = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


def _upstream(lang: str) -> dict:
    """The shipped file parsed independently of the loader."""
    return json.loads(lzma.decompress((DATA_ROOT / "xquad" / f"xquad.{lang}.json.xz").read_bytes()))


@pytest.fixture(scope="module")
def answers() -> dict[str, dict[str, str]]:
    """lang -> question id -> NFC answer text."""
    return {
        lang: {
            qa["id"]: unicodedata.normalize("NFC", qa["answers"][0]["text"].strip())
            for article in _upstream(lang)["data"] for p in article["paragraphs"] for qa in p["qas"]
        }
        for lang in PAPER_TRAIN_LANGUAGES
    }


@pytest.fixture(scope="module")
def everything():
    return squad.load_training_set(ALL_XQUAD, "all")


def test_all_split_has_1190_parallel_questions_in_12_languages(everything):
    assert len(everything.groups) == 1190
    assert everything.languages == ALL_XQUAD
    assert all(group.languages == ALL_XQUAD for group in everything.groups)
    first = everything.groups[0]
    assert first.id == "56beb4343aeaaa14008c925b"
    assert first.queries["en"] == "How many points did the Panthers defense surrender?"
    assert first.passages["en"] == (
        "The Panthers defense gave up just 308 points, ranking sixth in the league, while also leading "
        "the NFL in interceptions with 24 and boasting four Pro Bowl selections."
    )
    assert first.context["en"].startswith(first.passages["en"] + " Pro Bowl defensive tackle Kawann Short")
    assert first.passages["zh"].startswith("黑豹队的防守只丢了 308分") and first.passages["zh"].endswith("。")


def test_answer_sentence_holds_the_answer_and_lies_in_its_paragraph(everything, answers):
    for group in everything.groups:
        for lang in PAPER_TRAIN_LANGUAGES:
            assert answers[lang][group.id] in group.passages[lang], (lang, group.id)
            assert group.passages[lang] in group.context[lang]


def test_texts_are_nfc_and_free_of_stray_bom_even_where_upstream_is_not(everything):
    raw_hindi = [p["context"] for a in _upstream("hi")["data"] for p in a["paragraphs"]]
    assert sum(unicodedata.normalize("NFC", c) != c for c in raw_hindi) == 101  # upstream Hindi is mixed
    for group in everything.groups:
        for text in (*group.queries.values(), *group.passages.values(), *group.context.values()):
            assert unicodedata.is_normalized("NFC", text) and "\ufeff" not in text and text


def test_train_dev_and_eval_articles_are_disjoint_and_cover_all_48():
    titles = [a["title"] for a in _upstream("en")["data"]]
    train, dev, held_out = (squad.article_split(titles, split) for split in ("train", "dev", "eval"))
    assert len(set(titles)) == 48 and (len(train), len(dev), len(held_out)) == (27, 9, 12)
    assert not train & held_out and not dev & held_out and not train & dev
    assert train | dev | held_out == set(titles) == squad.article_split(titles, "all")
    ordered = sorted(titles)
    assert ordered[3] in held_out and ordered[0] in train  # every 4th by sorted title is eval
    rest = [t for t in ordered if t not in held_out]
    assert rest[3] in dev and rest[7] in dev  # of the others, every 4th is dev
    train_ids = {g.id for g in squad.load_training_set(("en",), "train").groups}
    dev_ids = {g.id for g in squad.load_training_set(("en",), "dev").groups}
    eval_set = xquad_r.load_eval_set(EvalSpec("xquad-r", ("en",), "eval"))
    eval_ids = {q.id.split(":", 1)[1] for q in eval_set.queries}
    assert (len(train_ids), len(dev_ids), len(eval_ids)) == (698, 210, 282)
    assert not train_ids & eval_ids and not dev_ids & eval_ids and not train_ids & dev_ids
    assert len(train_ids | dev_ids | eval_ids) == 1190


def test_the_dev_loss_is_computed_on_groups_in_no_training_subset_of_any_size():
    languages = PAPER_TRAIN_LANGUAGES
    train = squad.load_training_set(languages, "train")
    dev = squad.load_training_set(languages, "dev")
    trained: set[str] = set()
    for size in (32, 100, 300, 698):
        for seed in (0, 1):
            trained |= {g.id for g in training_subset(train, size, seed, languages)}
    for strategy in ("mono", "hybrid", "contrastive"):
        config = RunConfig(strategy=strategy, train_size=100, batch_size=32, dev_every=10)
        used = {p.group for batch in dev_batches(batch_plan(config), dev) for p in batch.pairs}
        assert used and not used & trained
        assert used <= {g.id for g in dev.groups}


def test_a_groups_passage_ids_are_its_answer_sentences():
    groups = squad.load_training_set(("en", "de"), "train").groups
    spec = EvalSpec("xquad-r", ("en", "de"), "train")
    sentences = {p.id: p.text for p in xquad_r.load_eval_set(spec).passages}
    for group in groups[:50]:
        for lang in ("en", "de"):
            assert group.passage_id(lang).startswith(f"{lang}:")
            assert sentences[group.passage_id(lang)] == group.passages[lang]


def test_xquad_r_relevant_set_is_the_answer_sentence_in_every_language(answers):
    languages = ("ar", "en", "th", "zh")
    eval_set = xquad_r.load_eval_set(EvalSpec("xquad-r", languages, "eval"))
    assert eval_set.name == "xquad-r/eval (held-out articles, own sentence splitter)"
    assert len(eval_set.queries) == 4 * 282
    passages = {p.id: p for p in eval_set.passages}
    assert eval_set.passage_languages == languages
    for query in eval_set.queries:
        relevant = eval_set.qrels[query.id]
        assert sorted(passages[pid].language for pid in relevant) == sorted(languages)
        assert set(relevant.values()) == {1}
        qid = query.id.split(":", 1)[1]
        for pid in relevant:
            assert answers[passages[pid].language][qid] in passages[pid].text


def test_xquad_eval_is_question_to_paragraph_over_the_split_corpus():
    eval_set = squad.load_eval_set(EvalSpec("xquad", ("en", "de"), "eval"))
    # 12 articles x 5 paragraphs each in XQuAD (240 paragraphs / 48 articles).
    assert len(eval_set.passages) == 2 * 60 and len(eval_set.queries) == 2 * 282
    by_id = {p.id: p.text for p in eval_set.passages}
    query = next(q for q in eval_set.queries if q.language == "de")
    assert {pid.split(":")[0] for pid in eval_set.qrels[query.id]} == {"en", "de"}
    assert all(by_id[pid] for pid in eval_set.qrels[query.id])


def test_unknown_split_and_language_are_clear():
    with pytest.raises(DataError, match=r"^xquad-r: unknown split 'test'; use one of train, eval, all$"):
        xquad_r.load_eval_set(EvalSpec("xquad-r", ("en",), "test"))
    with pytest.raises(DataError, match=r"^xquad: no language 'sw' in .*xquad; available: ar, de, el, en"):
        squad.load_training_set(("en", "sw"))


def _squad_file(folder, lang: str, articles: list[tuple[str, str, list[tuple[str, str, str, int]]]]) -> None:
    data = {"version": "1.1", "data": [
        {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}]}
            for qid, question, answer, start in qas]}]}
        for title, context, qas in articles
    ]}
    (folder / f"squad.translate-train.{lang}.json").write_text(json.dumps(data), encoding="utf-8")


def test_translated_squad_folder_fixes_offsets_merges_spans_and_keeps_complete_groups(tmp_path):
    context = "He served in the U.S. Army. Then he left in 1990. The end."
    _squad_file(tmp_path, "en", [
        ("A", context, [("q1", "Where?", "U.S. Army", 17), ("q2", "When?", "1990", 0), ("q3", "Who?", "Bob", 3)]),
        ("B", "Only one sentence here.", [("q4", "What?", "one sentence", 5)]),
    ])
    _squad_file(tmp_path, "de", [
        ("A", "Er diente. Dann ging er 1990.", [("q2", "Wann?", "1990", 24), ("q1", "Wo?", "diente", 3)]),
    ])
    pairs = squad.load_training_set(("en", "de"), "all", path=str(tmp_path))
    # q3's answer is not in its context (skipped); q4 has no German version (incomplete group).
    assert [g.id for g in pairs.groups] == ["q1", "q2"]
    assert pairs.groups[0].passages == {"en": "He served in the U.S. Army.", "de": "Er diente."}
    # answer_start 0 was wrong: the nearest "1990" is used.
    assert pairs.groups[1].passages == {"en": "Then he left in 1990.", "de": "Dann ging er 1990."}
    assert pairs.groups[1].context["en"] == context


def test_translated_squad_folder_errors(tmp_path):
    (tmp_path / "squad.en.json").write_text('{"data": [{"title": "A", "paragraphs": [{"qas": []}]}]}')
    with pytest.raises(DataError, match=r"squad\.en\.json: data\[0\]\.paragraphs\[0\]: missing field 'context'"):
        squad.load_training_set(("en",), "all", path=str(tmp_path))
    (tmp_path / "other.en.json").write_text("{}")
    with pytest.raises(DataError, match=r"2 files for language 'en' \(other\.en\.json, squad\.en\.json\)"):
        squad.load_training_set(("en",), "all", path=str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"no-such-folder: no such folder"):
        squad.load_training_set(("en",), path=str(tmp_path / "no-such-folder"))


def _hub_folder(tmp_path) -> str:
    """A local dataset in hub layout (configs per language, no title column, like google/xquad)."""
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: xquad.en\n  data_files: en.jsonl\n- config_name: xquad.de\n  data_files: de.jsonl\n---\n"
    )
    rows = {
        "en": ("Berlin is big. It has 3 million people.", "How many?", "3 million", 22),
        "de": ("Berlin ist groß. Es hat 3 Millionen Menschen.", "Wie viele?", "3 Millionen", 24),
    }
    for lang, (context, question, answer, start) in rows.items():
        row = {"id": "q1", "context": context, "question": question, "answers": {"text": [answer], "answer_start": [start]}}
        (folder / f"{lang}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return str(folder)


def test_hf_source_reads_a_hub_layout_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    pairs = squad.load_training_set(("en", "de"), "all", path=f"hf:{_hub_folder(tmp_path)}:xquad.{{lang}}")
    assert [g.id for g in pairs.groups] == ["q1"]
    assert pairs.groups[0].passages == {"en": "It has 3 million people.", "de": "Es hat 3 Millionen Menschen."}


@pytest.mark.timeout(60)
def test_hf_source_offline_says_what_to_do(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataNotFoundError, match=r"hf:google/xquad:xquad\.\{lang\}: cannot load 'google/xquad' config 'xquad\.en'.*go online once.*pass a folder"):
        squad.load_training_set(("en",), path="hf:google/xquad:xquad.{lang}")


# ---- LAReQA's xquad-r files: SQuAD JSON with sentence_breaks per paragraph -----------------------------------

LAREQA_CONTEXT = {
    "en": "The river floods in spring. Farmers plant rice then. Harvest comes in autumn.",
    "de": "Der Fluss tritt im Frühling über die Ufer. Dann pflanzen Bauern Reis. Die Ernte kommt im Herbst.",
}
#: Question id -> answer text per language; q1 and q2 share their answer sentence (the second one).
LAREQA_ANSWERS = {"q0": {"en": "spring", "de": "Frühling"}, "q1": {"en": "rice", "de": "Reis"},
                  "q2": {"en": "Farmers", "de": "Bauern"}, "q3": {"en": "autumn", "de": "Herbst"}}


def _lareqa_file(lang: str, titles: list[str]) -> dict:
    """A file as LAReQA ships it: each sentence's [start, end) offsets, and the sentences themselves."""
    context = LAREQA_CONTEXT[lang]
    starts = [0] + [i + 2 for i, ch in enumerate(context) if ch == "." and i + 2 < len(context)]
    breaks = [[start, context.index(".", start) + 1] for start in starts]


    def paragraph(title: str) -> dict:  # question ids unique per article, parallel across languages
        qas = [{"id": f"{title}-{qid}", "question": f"{lang} question {qid}?",
                "answers": [{"text": a[lang], "answer_start": context.index(a[lang])}]}
               for qid, a in LAREQA_ANSWERS.items()]
        return {"context": context, "qas": qas, "sentence_breaks": breaks, "sentences": [context[s:e] for s, e in breaks]}

    return {"version": "1.1", "data": [{"title": title, "paragraphs": [paragraph(title)]} for title in titles]}


def test_lareqa_files_use_their_sentence_breaks_and_a_sentence_may_answer_several_questions(tmp_path):
    # Four articles (the same paragraph): split "all" is every one, as in the published pool.
    for lang in ("en", "de"):
        (tmp_path / f"{lang}.json").write_text(json.dumps(_lareqa_file(lang, ["A", "B", "C", "D"]), ensure_ascii=False))
    eval_set = xquad_r.load_eval_set(EvalSpec("xquad-r", ("en", "de"), "all", path=str(tmp_path)))
    assert eval_set.name == "xquad-r/all (LAReQA sentences)"
    assert len(eval_set.passages) == 2 * 4 * 3 and len(eval_set.queries) == 2 * 4 * 4
    texts = {p.id: p.text for p in eval_set.passages}
    assert texts["en:0.0.1"] == "Farmers plant rice then." and texts["de:0.0.2"] == "Die Ernte kommt im Herbst."
    assert eval_set.qrels["en:A-q1"] == eval_set.qrels["en:A-q2"] == {"en:0.0.1": 1, "de:0.0.1": 1}
    assert eval_set.qrels["de:A-q0"] == {"en:0.0.0": 1, "de:0.0.0": 1}


def test_a_folder_without_sentence_breaks_is_not_taken_for_lareqa(tmp_path):
    for lang in ("en", "de"):
        data = _lareqa_file(lang, ["A"])
        if lang == "de":
            del data["data"][0]["paragraphs"][0]["sentence_breaks"]
        (tmp_path / f"xquad.{lang}.json").write_text(json.dumps(data, ensure_ascii=False))
    with pytest.raises(DataError, match=r"^xquad-r: the de file in .* has paragraphs without sentence_breaks; give "
                                        r"LAReQA's xquad-r folder"):
        xquad_r.load_eval_set(EvalSpec("xquad-r", ("en", "de"), "all", path=str(tmp_path)))
    broken = _lareqa_file("en", ["A"])
    broken["data"][0]["paragraphs"][0]["sentence_breaks"] = [[0, 27], [20, 40]]
    (tmp_path / "xquad.en.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match=r"sentence_breaks must be ordered \[start, end\] offsets .* got \[20, 40\]"):
        xquad_r.load_eval_set(EvalSpec("xquad-r", ("en",), "all", path=str(tmp_path)))


def test_xquad_r_evaluates_the_papers_unseen_languages():
    eval_set = xquad_r.load_eval_set(EvalSpec("xquad-r", ("el", "vi", "en"), "eval", max_queries=5))
    assert eval_set.query_languages == ("el", "en", "vi") and len(eval_set.queries) == 15


def test_hf_source_with_data_files_reads_parquet_through_the_hub_path(tmp_path, monkeypatch):
    """``hf:NAME:PATH.parquet``: the repo's data files, never its loading script; a data folder is read too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "google" / "xquad"
    rows = {"en": ("Berlin is big. It has 3 million people.", "How many?", "3 million", 22),
            "de": ("Berlin ist groß. Es hat 3 Millionen Menschen.", "Wie viele?", "3 Millionen", 24)}
    for lang, (context, question, answer, start) in rows.items():
        (repo / f"xquad.{lang}").mkdir(parents=True)
        table = pa.Table.from_pylist([{"id": "q1", "context": context, "question": question,
                                       "answers": {"text": [answer], "answer_start": [start]}}])
        pq.write_table(table, repo / f"xquad.{lang}" / "validation-00000-of-00001.parquet")
    expected = {"en": "It has 3 million people.", "de": "Es hat 3 Millionen Menschen."}
    pairs = squad.load_training_set(("en", "de"), "all", path=f"hf:{repo}:xquad.{{lang}}/*.parquet")
    assert pairs.groups[0].passages == expected
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    pairs = squad.load_training_set(("en", "de"), "all", path="hf:google/xquad:xquad.{lang}/*.parquet")
    assert pairs.groups[0].passages == expected
