"""The text encoder: prefixes, pooling and Dense head, batched encoding, saving (loading: :mod:`engine.loading`).

One :class:`Encoder` wraps a Hugging Face backbone and its tokenizer so the
trainer (``embed``: differentiable) and the evaluator (``encode``: no grad,
length-sorted batches, mixed precision on GPU) share exactly the same
prefixing, truncation, pooling and head.

Saved folders are at once plain HF model folders and sentence-transformers
models with the same module stack, so ``SentenceTransformer(folder)`` encodes
as we do.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import sys
import weakref
from pathlib import Path
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
import torch
import transformers
from torch import Tensor
from transformers import BatchEncoding, PreTrainedTokenizerFast

from engine.embedded import make_readable
from engine.folders import replaced_whole
from engine.frozen_prefix import FrozenPrefix
from engine.heads import DenseLayer, exclude_prompt, pool
from engine.memo import KeptValues
from engine.padding import right_pad
from engine.st_folder import write_stack
from vocabulary.config import POOLINGS, EncoderSettings

Kind = Literal["query", "passage"]
KINDS: tuple[str, ...] = ("query", "passage")
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Written beside the sentence-transformers files of a saved model: the settings used and their sources.
SETTINGS_RECORD = "hybridscale_encoder.json"


class ModelError(ValueError):
    """A model spec, setting or argument is invalid."""


class ModelNotFoundError(FileNotFoundError):
    """A model could not be found locally nor downloaded."""


def check_settings(settings: EncoderSettings, max_positions: int) -> None:
    """Refuse settings the model cannot honour (a pooling we lack, more tokens than it takes, an unset value)."""
    unset = [f.name for f in dataclasses.fields(settings) if getattr(settings, f.name) is None]
    if unset:
        raise ModelError(f"{unset[0]}: not resolved; build encoders with load_encoder, which fills in the model's own")
    if settings.pooling not in POOLINGS:
        raise ModelError(f"pooling: unknown {settings.pooling!r}; use one of {', '.join(POOLINGS)}")
    if not 2 <= settings.max_length <= max_positions:
        raise ModelError(f"max_length: {settings.max_length} is outside 2..{max_positions} (the most this model takes)")


class Encoder(torch.nn.Module):
    """A backbone plus tokenizer, resolved :class:`EncoderSettings` and a head; ``forward`` returns text vectors.

    The head is what a sentence-transformers model adds after its
    transformer: ``include_prompt`` (pool the prefix tokens too, or not)
    and Dense layers, applied after pooling and before normalisation.
    ``lowercase_inputs`` is its Transformer's ``do_lower_case``.
    ``sources`` names where each setting came from (run, model folder, ...).
    """

    tokenizer: PreTrainedTokenizerFast
    backbone: transformers.PreTrainedModel
    settings: EncoderSettings
    spec: str

    def __init__(
        self,
        backbone: transformers.PreTrainedModel,
        tokenizer: PreTrainedTokenizerFast,
        settings: EncoderSettings,
        spec: str,
        *,
        dense: Sequence[DenseLayer] = (),
        include_prompt: bool = True,
        lowercase_inputs: bool = False,
        sources: Mapping[str, str] | None = None,
    ):
        super().__init__()
        check_settings(settings, max_tokens(backbone, tokenizer))
        _check_dense_chain(int(backbone.config.hidden_size), dense, spec)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.settings = settings
        self.spec = spec
        self.dense = torch.nn.ModuleList(dense)
        self.include_prompt = include_prompt
        self.lowercase_inputs = lowercase_inputs
        if lowercase_inputs:
            self.tokenizer = tokenizer = _lowercased(tokenizer)
        self.sources = dict(sources or {})
        #: Set by :meth:`cache_frozen_prefix`: the layers below the trainable ones are then served from a cache.
        self.frozen_prefix: FrozenPrefix | None = None
        self._prompt_lengths = {kind: self._measure_prompt(kind) for kind in KINDS}

    # ---- properties ------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def dimension(self) -> int:
        """The length of a text vector: the last Dense layer's output, else the hidden size."""
        return self.dense[-1].out_features if len(self.dense) else self.hidden_size

    @property
    def num_layers(self) -> int:
        return int(self.backbone.config.num_hidden_layers)

    def prefix(self, kind: Kind) -> str:
        if kind not in KINDS:
            raise ModelError(f"kind: unknown {kind!r}; use 'query' or 'passage'")
        return self.settings.query_prefix if kind == "query" else self.settings.passage_prefix

    def prompt_length(self, kind: Kind) -> int:
        """Leading tokens that pooling skips for ``kind`` (0 unless the model excludes its prompt)."""
        return self._prompt_lengths[kind]

    def _measure_prompt(self, kind: Kind) -> int:
        """sentence-transformers' prompt length: the prefix's tokens, ``[CLS]`` included, a trailing special one not."""
        prefix = self.prefix(kind)
        if self.include_prompt or not prefix:
            return 0
        ids = self.tokenizer(prefix, truncation=True, max_length=self.settings.max_length)["input_ids"]
        return len(ids) - 1 if ids and ids[-1] in self.tokenizer.all_special_ids else len(ids)

    def describe(self) -> str:
        """One line naming every setting, its value and where it came from (for the run log)."""
        s, src = self.settings, self.sources
        parts = [f"pooling {s.pooling}" + ("" if self.include_prompt else " without the prefix tokens")
                 + f" ({src.get('pooling', '?')})"]
        parts += [layer.describe() for layer in self.dense]
        parts += [f"normalize {'yes' if s.normalize else 'no'} ({src.get('normalize', '?')})",
                  f"query prefix {s.query_prefix!r} ({src.get('query_prefix', '?')})",
                  f"passage prefix {s.passage_prefix!r} ({src.get('passage_prefix', '?')})",
                  f"max length {s.max_length} ({src.get('max_length', '?')})"]
        return f"{self.spec}: " + ", ".join(parts)

    # ---- tokens ----------------------------------------------------------
    def _token_ids(self, texts: Sequence[str], kind: Kind, max_length: int | None = None) -> list[list[int]]:
        """Prefixed, truncated token ids with ``<s>``/``</s>``, unpadded.

        ``max_length`` overrides the settings' length, capped at what the model takes.
        """
        if isinstance(texts, str):
            raise ModelError("texts: give a list of strings, not a single string")
        prefix = self.prefix(kind)
        if not texts:
            return []
        encoded = self.tokenizer(
            [prefix + text for text in texts],
            truncation=True,
            max_length=self._token_length(max_length),
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def _token_length(self, max_length: int | None) -> int:
        if max_length is None:
            return self.settings.max_length
        if max_length < 2:
            raise ModelError(f"max_length: must be at least 2, got {max_length}")
        return min(max_length, max_tokens(self.backbone, self.tokenizer))

    def _kept_token_ids(self, texts: Sequence[str], kind: Kind, max_length: int | None) -> tuple[np.ndarray, ...]:
        """:meth:`_token_ids` as int32 arrays, kept per tokenizer for the lists this process encodes again.

        See :data:`_ENCODED`; the key holds a digest of the texts, not the texts. A single string is
        refused by :meth:`_token_ids`, and nothing is kept then.
        """
        kept = _ENCODED.setdefault(self.tokenizer, KeptValues(_ENCODED_BYTES_KEPT, _bytes_held))
        digest = hashlib.blake2b(json.dumps(list(texts), ensure_ascii=False).encode(), digest_size=16).digest()
        key = (self.prefix(kind), self._token_length(max_length), digest)
        return kept.get(key, lambda: tuple(np.asarray(ids, dtype=np.int32)
                                           for ids in self._token_ids(texts, kind, max_length)))

    def _pad(self, ids: Sequence[Sequence[int]]) -> BatchEncoding:
        input_ids, attention_mask = right_pad(ids, self.tokenizer.pad_token_id)
        return BatchEncoding({"input_ids": input_ids, "attention_mask": attention_mask})

    def tokenize(self, texts: Sequence[str], kind: Kind) -> BatchEncoding:
        """``input_ids`` and ``attention_mask`` (CPU tensors) of the prefixed, truncated, padded texts."""
        ids = self._token_ids(texts, kind)
        if not ids:
            raise ModelError("texts: nothing to tokenize (empty list)")
        return self._pad(ids)

    # ---- vectors ---------------------------------------------------------
    def forward(self, input_ids: Tensor, attention_mask: Tensor, prompt_length: int = 0) -> Tensor:
        """``[B, D]`` float32 vectors: pooled (skipping ``prompt_length`` leading tokens), Dense, L2 if set."""
        prefix = self.frozen_prefix
        if prefix is None:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        else:
            hidden = prefix.top_layers(prefix.hidden(input_ids, attention_mask), attention_mask)
        hidden = hidden.float()
        mask = exclude_prompt(attention_mask, prompt_length) if prompt_length else attention_mask
        vectors = pool(hidden, mask, self.settings.pooling)
        for layer in self.dense:
            vectors = layer(vectors)
        if self.settings.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors

    def embed(self, texts: Sequence[str], kind: Kind) -> Tensor:
        """Vectors for one training batch, with gradients, on :attr:`device`."""
        batch = self.tokenize(texts, kind).to(self.device)
        return self(batch["input_ids"], batch["attention_mask"], self.prompt_length(kind))

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        kind: Kind,
        batch_size: int = 64,
        precision: str = "auto",
        progress: Callable[[int, int], None] | None = None,
        max_length: int | None = None,
    ) -> np.ndarray:
        """float32 ``[N, H]`` vectors in input order, without gradients.

        Texts are batched by token length (longest first, so a memory
        problem shows at once and padding is minimal); ``progress(done,
        total)`` is called after each batch. ``max_length`` truncates at that
        many tokens instead of the settings' (the evaluator's passage length),
        at most the model's limit. The module's train/eval mode is restored
        afterwards.
        """
        if batch_size < 1:
            raise ModelError(f"batch_size: must be at least 1, got {batch_size}")
        autocast = self._autocast(precision)
        ids = self._kept_token_ids(texts, kind, max_length)
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        was_training = self.training
        self.eval()
        try:
            with autocast:
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch = self._pad([ids[i] for i in rows]).to(self.device)
                    vectors = self(batch["input_ids"], batch["attention_mask"], self.prompt_length(kind))
                    out[rows] = vectors.float().cpu().numpy()
                    if progress is not None:
                        progress(min(start + batch_size, len(order)), len(order))
        finally:
            self.train(was_training)
        return out

    def _autocast(self, precision: str) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA for ``auto`` (fp32 on CPU, where bf16 is slow or inexact)."""
        device_type = self.device.type
        if precision == "auto":
            dtype = torch.bfloat16 if device_type == "cuda" else None
        elif precision in PRECISIONS:
            dtype = PRECISIONS[precision]
        else:
            raise ModelError(f"precision: unknown {precision!r}; use auto, {', '.join(PRECISIONS)}")
        return torch.autocast(device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    # ---- training helpers -------------------------------------------------
    def _transformer_layers(self) -> torch.nn.ModuleList:
        """The stack of transformer blocks (``encoder.layer`` in BERT/XLM-R; found generically)."""
        for module in self.backbone.modules():
            if isinstance(module, torch.nn.ModuleList) and len(module) == self.num_layers:
                return module
        raise ModelError(f"{self.spec}: cannot find its {self.num_layers} transformer layers to freeze")

    def freeze(self, embeddings: bool, trainable_layers: int | None) -> None:
        """Choose what trains; every call starts from all parameters trainable.

        ``embeddings`` freezes the word-embedding matrix (most of e5-small's
        parameters and of a CPU step's cost). ``trainable_layers=N`` trains
        only the top N transformer layers and the Dense head above them,
        freezing everything below (embeddings included), so backpropagation
        stops early; ``None`` trains all layers. The head always trains: it
        sits above every layer, costs little, and a frozen random or
        published head would fix the output space the loss is asking to move.
        """
        for parameter in self.parameters():
            parameter.requires_grad_(True)
        if embeddings:
            self.backbone.get_input_embeddings().weight.requires_grad_(False)
        if trainable_layers is None:
            return
        if not 0 <= trainable_layers <= self.num_layers:
            raise ModelError(f"trainable_layers: {trainable_layers} is outside 0..{self.num_layers}")
        layers = self._transformer_layers()
        keep = {id(p) for layer in layers[len(layers) - trainable_layers :] for p in layer.parameters()}
        keep |= {id(p) for p in self.dense.parameters()}
        for parameter in self.parameters():
            if id(parameter) not in keep:
                parameter.requires_grad_(False)

    def cache_frozen_prefix(self, trainable_layers: int, directory: Path | None) -> FrozenPrefix:
        """Serve the layers below the top ``trainable_layers`` (and the embeddings) from a cache from now on.

        See :mod:`engine.frozen_prefix` for what changes (no dropout there, float16
        hidden states) and where the cache lives (``directory``; None: memory).
        """
        if not 1 <= trainable_layers <= self.num_layers:
            raise ModelError(f"trainable_layers: {trainable_layers} is outside 1..{self.num_layers}")
        self.frozen_prefix = FrozenPrefix(self.backbone, self.num_layers - trainable_layers, directory)
        return self.frozen_prefix

    # ---- saving ----------------------------------------------------------
    def save(self, path: Path) -> None:
        """A HF folder that is also a sentence-transformers model of the same stack; replaces ``path`` whole.

        Beside it, :data:`SETTINGS_RECORD` keeps the settings this encoder
        used and where each came from.
        """
        with replaced_whole(Path(path)) as work:
            self.backbone.save_pretrained(work)
            self.tokenizer.save_pretrained(work)
            _portable_tokenizer_class(work / "tokenizer_config.json")
            s = self.settings
            write_stack(work, hidden_size=self.hidden_size, pooling=s.pooling, include_prompt=self.include_prompt,
                        dense=list(self.dense), normalize=s.normalize, max_length=s.max_length,
                        lowercase_inputs=self.lowercase_inputs, query_prefix=s.query_prefix,
                        passage_prefix=s.passage_prefix)
            record = {"base_model": self.spec, "settings": dataclasses.asdict(s), "sources": self.sources,
                      "include_prompt": self.include_prompt, "dense": [layer.config() for layer in self.dense]}
            (work / SETTINGS_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
            make_readable(work)


def _check_dense_chain(hidden_size: int, dense: Sequence[DenseLayer], spec: str) -> None:
    width = hidden_size
    for layer in dense:
        if layer.in_features != width:
            raise ModelError(f"{spec}: a Dense layer takes {layer.in_features} inputs but receives {width}")
        width = layer.out_features


def max_tokens(backbone: transformers.PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> int:
    """The longest input the model takes (XLM-R configs say 514 positions but take 512 tokens)."""
    positions = getattr(backbone.config, "max_position_embeddings", None) or tokenizer.model_max_length
    return int(min(positions, tokenizer.model_max_length))


def _portable_tokenizer_class(config_file: Path) -> None:
    """transformers 5 records its generic fast tokenizer as ``TokenizersBackend``, a name
    transformers 4 and other tools do not know; ``PreTrainedTokenizerFast`` is the same class."""
    config = json.loads(config_file.read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_file.write_text(json.dumps(config, indent=2) + "\n")


# ---- devices -------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available else CPU; an unavailable device is a clear error, not a crash later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ModelError(f"device: unknown {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device: {name!r} requested but this torch has no usable CUDA; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device: {name!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelError(f"device: {name!r} requested but MPS is not available; use 'cpu' or 'auto'")
    return device


def _lowercased(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """sentence-transformers' ``do_lower_case``: a copy with a Lowercase step first in its normaliser.

    transformers rebuilds a BERT tokenizer's normaliser from its config on
    loading, so a saved model keeps the flag in ``sentence_bert_config.json``
    instead, where every sentence-transformers version reads it. A copy,
    because the loaded tokenizer is shared (:func:`engine.loading._read_tokenizer`).
    """
    from tokenizers import normalizers

    current = tokenizer.backend_tokenizer.normalizer
    steps = list(current) if isinstance(current, normalizers.Sequence) else [current] if current is not None else []
    if any(isinstance(step, normalizers.Lowercase) for step in steps):
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.backend_tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), *steps])
    return tokenizer


def _bytes_held(ids: tuple[np.ndarray, ...]) -> int:
    return sys.getsizeof(ids) + sum(sys.getsizeof(row) for row in ids)


#: Token ids of the text lists this process encodes, by tokenizer (gone with it), prefix, length and
#: a digest of the texts: a worker encodes a study's eval sets (queries, and a corpus in shards of
#: ``engine.evaluate.PASSAGE_SHARD`` passages) once per run with the same base tokenizer, so from its
#: second run on it tokenises none of them. Bounded by bytes per tokenizer, not by lists, so a corpus of
#: many shards keeps all of them (a bound by lists dropped each shard before the next run needed it):
#: 4 bytes a token plus about 100 a text. Past the bound the oldest lists go, so a corpus whose token
#: ids outgrow it is tokenised again each run. Shared, so :meth:`Encoder.encode` only reads them.
_ENCODED: weakref.WeakKeyDictionary[PreTrainedTokenizerFast, KeptValues[tuple[np.ndarray, ...]]] = (
    weakref.WeakKeyDictionary())
_ENCODED_BYTES_KEPT = 512 * 2**20
