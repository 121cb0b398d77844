"""How texts become vectors: a run's encoder settings, and which source each one used came from.

A model's own settings (its sentence-transformers files, its model card) and
a run's overrides are layered here, in plain Python, so the engine resolves
them and the GUI and reports show where each came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

#: Pooling modes, named as sentence-transformers names them (its ``1_Pooling/config.json``).
POOLINGS: tuple[str, ...] = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean")
#: Where each encoder setting a run used came from, in the order they are consulted.
SOURCE_RUN = "run"
SOURCE_MODEL = "model folder"
SOURCE_CARD = "model card"
SOURCE_DEFAULT = "hybridscale default"


@dataclass(frozen=True)
class EncoderSettings:
    """How texts become vectors. ``None`` means "the base model's own".

    A sentence-transformers model folder defines its own pooling, Dense
    layers, normalisation, prompts and maximum length; a plain transformers
    folder gets :data:`PLAIN_MODEL_SETTINGS`. A value set here (by a run)
    overrides the model's (:func:`resolve_encoder_settings`).
    """

    pooling: str | None = None
    normalize: bool | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_length: int | None = None


#: A model without sentence-transformers files: the E5 recipe (mean pooling incl. ``<s>``/``</s>``,
#: L2, "query: "/"passage: ", 128 tokens), as every model was encoded before modules were read.
PLAIN_MODEL_SETTINGS = EncoderSettings("mean", True, "query: ", "passage: ", 128)


def resolve_encoder_settings(
    layers: Sequence[tuple[str, EncoderSettings]],
) -> tuple[EncoderSettings, dict[str, str]]:
    """Each setting from the first ``(source, settings)`` layer that sets it, and which source that was.

    Layers are given most authoritative first (the run, the model folder,
    the model card, the default); a setting no layer sets stays None.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field_info in dataclasses.fields(EncoderSettings):
        for source, settings in layers:
            value = getattr(settings, field_info.name)
            if value is not None:
                values[field_info.name], sources[field_info.name] = value, source
                break
    return EncoderSettings(**values), sources
