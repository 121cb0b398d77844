"""Language codes used everywhere in hybridscale.

We speak ISO 639-1 (``sw``, ``yo``, ``en``) internally; each data source's own
codes (FLORES ``swh_Latn``, AfriQA ``swa``, NTREX ``yor``) are mapped here, at
load time, so no other module ever sees them.
"""

from __future__ import annotations

#: ISO 639-1 code -> English name, for every language some shipped or streamed source has.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "id": "Indonesian",
    "ig": "Igbo",
    "it": "Italian",
    "ja": "Japanese",
    "ln": "Lingala",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "rw": "Kinyarwanda",
    "sw": "Swahili",
    "th": "Thai",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "wo": "Wolof",
    "xh": "Xhosa",
    "yo": "Yoruba",
    "zh": "Chinese",
    "zu": "Zulu",
}

#: Source-specific codes (FLORES-200, ISO 639-3) -> ISO 639-1.
_SOURCE_CODES: dict[str, str] = {
    "arb_Arab": "ar",
    "deu_Latn": "de",
    "eng_Latn": "en",
    "hin_Deva": "hi",
    "ibo_Latn": "ig",
    "kin_Latn": "rw",
    "lin_Latn": "ln",
    "rus_Cyrl": "ru",
    "spa_Latn": "es",
    "swh_Latn": "sw",
    "tha_Thai": "th",
    "tur_Latn": "tr",
    "wol_Latn": "wo",
    "xho_Latn": "xh",
    "yor_Latn": "yo",
    "zho_Hans": "zh",
    "zul_Latn": "zu",
    "eng": "en",
    "swa": "sw",
    "swh": "sw",
    "yor": "yo",
}

#: The languages hybrid batch training (arXiv 2408.10536) trains on that XQuAD has.
PAPER_TRAIN_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")

#: The zero-shot targets of this app's research question.
TARGET_LANGUAGES: tuple[str, ...] = ("sw", "yo")


def to_iso(code: str) -> str:
    """Map any source code (``swh_Latn``, ``swa``, ``sw``) to ISO 639-1.

    Raises ValueError naming the code and the known codes, so a typo in a
    study file is caught with a message the user can act on.
    """
    if code in LANGUAGE_NAMES:
        return code
    if code in _SOURCE_CODES:
        return _SOURCE_CODES[code]
    raise ValueError(
        f"unknown language {code!r}: use one of {', '.join(sorted(LANGUAGE_NAMES))}"
    )


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)
