"""Known base models: what their own training saw, and presets for the encoders of the paper.

A result is zero-shot for a language only if neither our training run nor
the base model's own training used retrieval data in that language. The
second half of that is a fact about the model, declared here once, with
where it comes from: :func:`base_model` finds the entry for a model spec
and :meth:`BaseModel.exposures` says what it saw in one language (the
zero-shot labels and the setup form read it).

A :class:`Preset` fills the run's encoder settings for one published
encoder; ``None`` leaves a setting to the model's own files (see
:class:`vocabulary.config.EncoderSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ExposureKind = Literal["retrieval", "translation", "text"]
_KIND_WORDS: dict[str, str] = {
    "retrieval": "supervised retrieval pairs",
    "translation": "translation pairs",
    "text": "unlabelled text",
}

# MIRACL Table 1 (Zhang et al., TACL 2023, "MIRACL: A Multilingual Retrieval Dataset Covering 18
# Diverse Languages"): these 16 languages have a train split; its last column marks the 11 that
# Mr. TyDi (Zhang et al., 2021, arXiv 2108.08787) also covers. The two surprise languages, de and
# yo, have dev/test only (pyserini/2cr/miracl.yaml: yo has no train topics).
_MIRACL_TRAIN = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
_MR_TYDI = ("ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th")
# The model card's language list (https://huggingface.co/setu4993/LaBSE, the PyTorch port of the
# TF Hub model; sentence-transformers/LaBSE is its sentence-transformers port): 109 languages.
_LABSE = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "bo", "bs", "ca", "ceb", "co", "cs", "cy", "da", "de", "el",
    "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "haw", "he", "hi", "hmn",
    "hr", "ht", "hu", "hy", "id", "ig", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la",
    "lb", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "no", "ny", "or",
    "pa", "pl", "pt", "ro", "ru", "rw", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "st", "su", "sv", "sw",
    "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "ug", "uk", "ur", "uz", "vi", "wo", "xh", "yi", "yo", "zh",
    "zu",
)
# The model card's language list (https://huggingface.co/FacebookAI/xlm-roberta-base): the 100
# CC-100 languages of Conneau et al. 2020 (arXiv 1911.02116). Swahili is one, Yoruba is not.
_XLMR = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "hu", "hy", "id",
    "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml",
    "mn", "mr", "ms", "my", "ne", "nl", "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk", "ur", "uz", "vi",
    "xh", "yi", "zh",
)


@dataclass(frozen=True)
class Exposure:
    """One kind of data a base model was trained on before any run of ours.

    ``languages`` are the languages it covers (ISO 639-1 where there is
    one); ``eval_sets`` are our evaluation sets drawn from the same source,
    on which the model is in-domain; ``source`` says where the claim comes from.
    """

    kind: ExposureKind
    data: str
    languages: tuple[str, ...]
    source: str
    eval_sets: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{_KIND_WORDS[self.kind]}: {self.data}"


@dataclass(frozen=True)
class BaseModel:
    """A published encoder we know: the names it goes by and what its own training saw."""

    key: str
    label: str
    #: Model specs that are this model: hub names, and ``embedded:`` names of our converted copies.
    specs: tuple[str, ...]
    #: How its authors turn token vectors into a text vector, in words (the folder's files rule).
    recipe: str
    saw: tuple[Exposure, ...]
    #: The prefixes its card prescribes; used when its folder stores no prompts (None: none prescribed).
    query_prefix: str | None = None
    passage_prefix: str | None = None

    def exposures(self, language: str, kind: ExposureKind | None = None) -> tuple[Exposure, ...]:
        """What its training saw in ``language`` (of one ``kind``, or of every kind)."""
        return tuple(e for e in self.saw if language in e.languages and kind in (None, e.kind))

    def summary(self, languages: tuple[str, ...] = ("sw", "yo")) -> str:
        """One line per language: what the model's own training saw in it; then data of unlisted languages."""
        lines = []
        for language in languages:
            seen = self.exposures(language)
            lines.append(f"{language}: " + ("; ".join(e.text for e in seen) if seen else "none listed"))
        unlisted = [e.text for e in self.saw if not e.languages]
        if unlisted:
            lines.append("languages not listed: " + "; ".join(unlisted))
        return "\n".join(lines)


_E5_SOURCE = (
    "mE5 technical report (Wang et al. 2024, arXiv 2402.05672) Table 2, fine-tuning mixture: MIRACL 40k, "
    "Mr. TyDi 50k, NLLB 100k, ...; train splits only ('For all labeled datasets, we only use its training set')"
)
_E5_SAW: tuple[Exposure, ...] = (
    Exposure("retrieval", "MIRACL train (sw: 1,901 queries) and Mr. TyDi train (sw), fine-tuning",
             tuple(sorted(set(_MIRACL_TRAIN) | set(_MR_TYDI))), _E5_SOURCE, eval_sets=("miracl",)),
    Exposure("translation", "NLLB pairs (100k, languages not listed in the report), fine-tuning; NLLB and "
             "Wikipedia/mC4 text in weakly supervised pre-training", (), _E5_SOURCE),
)
_E5_RECIPE = "mean pooling over every token, L2 normalisation (model card: average_pool, F.normalize)"

BASE_MODELS: tuple[BaseModel, ...] = (
    BaseModel(
        "multilingual-e5-small", "multilingual-e5-small (Wang et al. 2024)",
        ("embedded:e5-small", "intfloat/multilingual-e5-small"), _E5_RECIPE, _E5_SAW,
        # https://huggingface.co/intfloat/multilingual-e5-small: 'Each input text should start with
        # "query: " or "passage: ", even for non-English texts.'
        query_prefix="query: ", passage_prefix="passage: ",
    ),
    BaseModel(
        "multilingual-e5-base", "multilingual-e5-base (Wang et al. 2024)",
        ("intfloat/multilingual-e5-base",), _E5_RECIPE, _E5_SAW,
        query_prefix="query: ", passage_prefix="passage: ",  # the same card text as e5-small
    ),
    BaseModel(
        "labse", "LaBSE (Feng et al. 2022)",
        ("sentence-transformers/LaBSE", "setu4993/LaBSE"),
        "[CLS] -> Dense 768x768 tanh -> L2 normalisation (sentence-transformers/LaBSE modules.json)",
        (
            Exposure("translation", "bilingual sentence pairs mined from the web, 109 languages (a translation "
                     "ranking task: sentence retrieval across languages)", _LABSE,
                     "Feng et al., 'Language-agnostic BERT Sentence Embedding', ACL 2022 (arXiv 2007.01852); "
                     "language list from the model card https://huggingface.co/setu4993/LaBSE"),
            Exposure("text", "CommonCrawl and Wikipedia (MLM + TLM pre-training)", _LABSE,
                     "the same paper and card ('datasets: CommonCrawl, Wikipedia')"),
        ),
    ),
    BaseModel(
        "xlm-roberta-base", "XLM-R base (Conneau et al. 2020)",
        ("FacebookAI/xlm-roberta-base", "xlm-roberta-base"),
        "none of its own (a masked language model): the run's pooling applies",
        (
            Exposure("text", "CC-100 only (2.5 TB of filtered CommonCrawl, masked language modelling)", _XLMR,
                     "Conneau et al., 'Unsupervised Cross-lingual Representation Learning at Scale', ACL 2020 "
                     "(arXiv 1911.02116); language list from https://huggingface.co/FacebookAI/xlm-roberta-base"),
        ),
    ),
)


def base_model(spec: str) -> BaseModel | None:
    """The known model a spec names: a hub name or ``embedded:`` name, or a local folder of that name."""
    spec = spec.strip().rstrip("/")
    for model in BASE_MODELS:
        if spec in model.specs:
            return model
    folder_name = spec.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if "/" in spec.replace("\\", "/"):
        for model in BASE_MODELS:
            if any(folder_name == name.rsplit("/", 1)[-1].lower() for name in model.specs if "/" in name):
                return model
    return None


@dataclass(frozen=True)
class Preset:
    """A published encoder as a run's model and encoder settings (``None``: the model's own)."""

    key: str
    label: str
    model: str
    note: str
    pooling: str | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_length: int | None = None

    def run_settings(self) -> dict[str, Any]:
        """The :class:`vocabulary.config.RunConfig` fields this preset sets."""
        return {"model": self.model, "pooling": self.pooling, "query_prefix": self.query_prefix,
                "passage_prefix": self.passage_prefix, "max_length": self.max_length}


#: arXiv 2408.10536 §2: 'we incorporate prefix identifiers "Query:" and "Passage:"' (capitalised as
#: printed; the space after the colon is ours, as in E5's "query: ").
PAPER_QUERY_PREFIX = "Query: "
PAPER_PASSAGE_PREFIX = "Passage: "

PRESETS: tuple[Preset, ...] = (
    Preset("e5-small-embedded", "multilingual-e5-small, embedded (offline)", "embedded:e5-small",
           "mean pooling, 'query: '/'passage: ' as its card prescribes; 128 tokens",
           query_prefix="query: ", passage_prefix="passage: "),
    Preset("e5-small", "multilingual-e5-small (hub)", "intfloat/multilingual-e5-small",
           "its sentence-transformers modules (mean, Normalize), 'query: '/'passage: ' as its card prescribes",
           query_prefix="query: ", passage_prefix="passage: "),
    Preset("e5-base", "multilingual-e5-base (hub)", "intfloat/multilingual-e5-base",
           "its sentence-transformers modules (mean, Normalize), 'query: '/'passage: ' as its card prescribes",
           query_prefix="query: ", passage_prefix="passage: "),
    Preset("paper-xlmr", "Paper: XLM-R base (mean pooling, 'Query: '/'Passage: ')", "FacebookAI/xlm-roberta-base",
           "the paper does not state its pooling; mean is our choice", pooling="mean",
           query_prefix=PAPER_QUERY_PREFIX, passage_prefix=PAPER_PASSAGE_PREFIX),
    Preset("paper-labse", "Paper: LaBSE as published ([CLS] -> Dense tanh -> Normalize, 'Query: '/'Passage: ')",
           "sentence-transformers/LaBSE", "its own modules and max length; the paper's prefixes",
           query_prefix=PAPER_QUERY_PREFIX, passage_prefix=PAPER_PASSAGE_PREFIX),
)


def preset(key: str) -> Preset:
    for entry in PRESETS:
        if entry.key == key:
            return entry
    raise ValueError(f"unknown preset {key!r}; known: {', '.join(p.key for p in PRESETS)}")
