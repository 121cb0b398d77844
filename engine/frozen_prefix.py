"""The frozen-prefix activation cache: hidden states below the trainable layers, computed once per text.

When a run trains only the top N transformer layers (``trainable_layers``),
the embeddings and the layers below them never change. With ``frozen_cache``
the hidden state after the last frozen layer is then a function of the base
model's frozen weights, the frozen depth and the token ids alone (the token
ids already hold the text, its prefix and the truncation length), so it is
computed once, kept, and every later training step and evaluation of every
run of the study only runs the trainable layers on it.

What this changes in the model (hence ``frozen_cache`` is part of a run's
identity): the frozen layers run in eval mode (no dropout) and their output is
rounded to float16, always, whether it was just computed or read back, so a
run's numbers do not depend on whether the cache was warm. It is computed in
float32 without autocast whatever the device, for the same reason.

Storage: one folder per frozen prefix, named by a digest of the frozen weights,
the architecture and the depth (so any change of those is a different folder,
never a stale hit), under the artifacts folder, shared by the runs of a
machine. Each entry is keyed by a digest of its token ids. Entries are written
in parts, a ``.npy`` float16 matrix of the parts' tokens (``[tokens, hidden]``)
and a ``.json`` index of (key, length) written after it, which holds an XXH3
checksum of the matrix file and one of itself; parts are read memory-mapped
with ``allow_pickle=False``. A wrong hidden state would change every later
run's numbers without a trace, so a part whose checksums, shape or index do
not match is removed with one warning and its entries are computed again.
A process reads a part whole for its check once: a worker's later runs trust
that check while the file keeps its path, inode, size and modification time
(bytes changed under an unchanged modification time go unseen until the next
process), and a part's checksum is taken from memory as it is written.
Writers and the start-up clean-up hold the folder's lock file, so whatever
half-written file the clean-up finds (``*.partial.*``, a matrix without its
index) was left by a killed writer and is removed; a read-only folder (no lock
can be taken there) is read as it is, removing nothing. A write that finds the
disk full raises :class:`engine.disk_full.DiskFullError` and leaves no file.
Size: ``2 * hidden`` bytes a token (768 B for e5-small), and at most
``max_bytes`` per folder: past that, new entries live in memory for the run only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from pathlib import Path
from typing import Iterator

import filelock
import numpy as np
import torch
import xxhash
from torch import Tensor

from engine.checked_files import PARTIAL, matches_checksum, save_matrix, write_atomically
from engine.disk_full import disk_full_as_error
from engine.padding import right_pad

log = logging.getLogger(__name__)

#: The cache folder's name under a machine's artifacts folder.
CACHE_DIR = "frozen_prefix"
#: Disk a prefix's folder may take before new entries stop being written (memory for the run only).
DEFAULT_MAX_BYTES = 2 * 2**30
#: Unwritten bytes kept in memory before they are written as a part.
_FLUSH_BYTES = 64 * 2**20
#: Texts run through the frozen layers at once (sorted by length, so padding is small).
_PREFIX_BATCH = 64
#: Held while a part is written or the folder is cleaned up.
_LOCK_FILE = ".lock"


class FrozenPrefixError(ValueError):
    """The model has no frozen prefix that can be cached (not a BERT-like stack, nothing frozen)."""


def _layer_list(backbone: torch.nn.Module, count: int) -> tuple[torch.nn.Module, str]:
    """The module holding the ``count`` transformer blocks and the attribute name it keeps them under."""
    for module in backbone.modules():
        for name, child in module.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == count:
                return module, name
    raise FrozenPrefixError(f"cannot find the {count} transformer layers of {type(backbone).__name__}")


class _Damaged(ValueError):
    """A part or its index that cannot be trusted (unreadable, inconsistent, or failing its checksum)."""


def _index_checksum(keys: list[str], lengths: list[int], part: str) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps([keys, lengths, part]).encode())


class _Given(torch.nn.Module):
    """Stands in for the embeddings: returns the hidden states it was given, whatever the inputs."""

    def __init__(self, hidden: Tensor):
        super().__init__()
        self.hidden = hidden

    def forward(self, *_args, **_kwargs) -> Tensor:
        return self.hidden


class FrozenPrefix:
    """Hidden states after the first ``depth`` layers of ``backbone``, per token sequence, cached.

    :meth:`hidden` serves a padded batch from the cache (computing what is
    missing); :meth:`top_layers` runs the backbone from there on. ``directory``
    None keeps everything in memory (tests, a run without an artifacts folder).
    """

    def __init__(self, backbone: torch.nn.Module, depth: int, directory: Path | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.backbone = backbone
        self.embeddings = getattr(backbone, "embeddings", None)
        if not isinstance(self.embeddings, torch.nn.Module):
            raise FrozenPrefixError(f"frozen_cache: {type(backbone).__name__} has no 'embeddings' module to bypass")
        layers_total = int(backbone.config.num_hidden_layers)
        if not 0 <= depth < layers_total:
            raise FrozenPrefixError(f"frozen_cache: frozen depth {depth} is outside 0..{layers_total - 1}")
        self._holder, self._attribute = _layer_list(backbone, layers_total)
        self.layers: torch.nn.ModuleList = getattr(self._holder, self._attribute)
        self.depth = depth
        self.hidden_size = int(backbone.config.hidden_size)
        self.identity = self._identity()
        self.folder = Path(directory) / self.identity if directory is not None else None
        self.max_bytes = max_bytes
        self._rows: dict[bytes, np.ndarray] = {}  # key -> float16 [tokens, hidden] (memory-mapped once written)
        self._pending: list[tuple[bytes, np.ndarray]] = []
        self._stored_bytes = 0
        self.computed = 0  # texts run through the frozen layers by this object (the rest were hits)
        if self.folder is not None:
            self._read_parts()

    # ---- identity and disk ------------------------------------------------
    def _identity(self) -> str:
        """A digest of what the hidden states depend on: architecture, depth and the frozen weights."""
        digest = hashlib.sha256()  # hardware-accelerated on current CPUs: ~0.4 s for e5-small's frozen part
        digest.update(json.dumps({"config": self.backbone.config.to_diff_dict(), "depth": self.depth},
                                 sort_keys=True, default=str).encode())
        for module in (self.embeddings, *self.layers[: self.depth]):
            for name, tensor in module.state_dict().items():
                digest.update(name.encode())
                digest.update(memoryview(tensor.detach().cpu().contiguous().numpy()).cast("B"))
        return digest.hexdigest()[:24]

    def _lock(self) -> filelock.FileLock:
        return filelock.FileLock(self.folder / _LOCK_FILE)

    def _read_parts(self) -> None:
        if not self.folder.is_dir():
            return
        lock = self._lock()
        try:
            lock.acquire()
        except OSError:  # a read-only folder (a shared copy): read what can be trusted, change nothing
            self._read_indexed_parts(writable=False)
            return
        try:
            self._remove_leftovers()
            self._read_indexed_parts(writable=True)
        finally:
            lock.release()

    def _read_indexed_parts(self, writable: bool) -> None:
        for index_file in sorted(self.folder.glob("part-*.json")):
            if PARTIAL in index_file.name:
                continue
            try:
                keys, lengths, matrix = self._read_part(index_file)
            except _Damaged as exc:
                log.warning("frozen-prefix cache part %s is damaged (%s): %sits entries are computed again",
                            index_file.with_suffix(".npy"), exc, "it is removed and " if writable else "")
                if writable:
                    index_file.with_suffix(".npy").unlink(missing_ok=True)
                    index_file.unlink(missing_ok=True)
                continue
            offset = 0
            for key, length in zip(keys, lengths):
                self._rows.setdefault(key, matrix[offset : offset + length])
                offset += length
            self._stored_bytes += matrix.nbytes

    def _remove_leftovers(self) -> None:
        """Files only a killed writer leaves (the caller holds the lock): partial files, a matrix without its index."""
        for path in self.folder.glob("part-*"):
            orphan = path.suffix == ".npy" and not path.with_suffix(".json").exists()
            if PARTIAL in path.name or orphan:
                log.info("frozen-prefix cache: removing %s, left by an interrupted write", path)
                path.unlink(missing_ok=True)

    def _read_part(self, index_file: Path) -> tuple[list[bytes], list[int], np.ndarray]:
        """A part's keys, lengths and memory-mapped matrix, once its index and matrix match their checksums."""
        matrix_file = index_file.with_suffix(".npy")
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
            keys, lengths, part = index["keys"], index["lengths"], index["part"]
            if index.get("index") != _index_checksum(keys, lengths, part):
                raise _Damaged("its index does not match its checksum")
            if not matches_checksum(matrix_file, part):
                raise _Damaged("it does not match its checksum")
            matrix = np.load(matrix_file, mmap_mode="r", allow_pickle=False)
            key_bytes = [bytes.fromhex(key) for key in keys]
        except _Damaged:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _Damaged(f"{type(exc).__name__}: {exc}") from exc
        if matrix.dtype != np.float16 or matrix.ndim != 2 or matrix.shape[1] != self.hidden_size \
                or len(keys) != len(lengths) or sum(lengths) != matrix.shape[0]:
            raise _Damaged("it does not match its index")
        return key_bytes, lengths, matrix

    def flush(self) -> None:
        """Write the entries computed since the last flush as one part (if the folder has room).

        Raises :class:`engine.disk_full.DiskFullError` when the disk is full
        (numpy reports it as a short write, without an errno), leaving no file.
        """
        if self.folder is None or not self._pending:
            self._pending.clear()
            return
        pending, self._pending = self._pending, []
        size = sum(rows.nbytes for _, rows in pending)
        if self._stored_bytes + size > self.max_bytes:
            log.info("frozen-prefix cache %s is full (%d MB): %d new entries stay in memory for this run",
                     self.folder, self._stored_bytes // 2**20, len(pending))
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f"part-{uuid.uuid4().hex}.npy"
        matrix = np.concatenate([rows for _, rows in pending])
        with disk_full_as_error(self.folder, size), self._lock():
            checksum = write_atomically(part, lambda path: save_matrix(path, matrix))
            keys, lengths = [key.hex() for key, _ in pending], [len(rows) for _, rows in pending]
            index = {"keys": keys, "lengths": lengths, "part": checksum,
                     "index": _index_checksum(keys, lengths, checksum)}
            try:
                write_atomically(part.with_suffix(".json"),
                                  lambda path: path.write_text(json.dumps(index), encoding="utf-8"))
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        self._stored_bytes += size

    # ---- hidden states --------------------------------------------------------
    @staticmethod
    def _key(ids: np.ndarray) -> bytes:
        return hashlib.blake2b(ids.astype(np.int64).tobytes(), digest_size=16).digest()

    def hidden(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """float32 ``[B, T, H]`` hidden states after the frozen layers, on ``input_ids``' device, zero-padded."""
        ids = input_ids.cpu().numpy()
        lengths = attention_mask.sum(dim=1).cpu().tolist()
        rows = [ids[i, :n] for i, n in enumerate(lengths)]
        keys = [self._key(row) for row in rows]
        missing = {key: row for key, row in zip(keys, rows) if key not in self._rows}
        if missing:
            self._compute(list(missing.keys()), list(missing.values()), input_ids.device)
        out = np.zeros((len(rows), ids.shape[1], self.hidden_size), dtype=np.float16)
        for i, (key, n) in enumerate(zip(keys, lengths)):
            out[i, :n] = self._rows[key]
        return torch.from_numpy(out).to(input_ids.device).float()

    @torch.no_grad()
    def _compute(self, keys: list[bytes], rows: list[np.ndarray], device: torch.device) -> None:
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        pad = int(getattr(self.backbone.config, "pad_token_id", None) or 0)
        with self._prefix_only(), torch.autocast(device.type, enabled=False):
            for start in range(0, len(order), _PREFIX_BATCH):
                chosen = order[start : start + _PREFIX_BATCH]
                input_ids, mask = right_pad([rows[i] for i in chosen], pad)
                hidden = self.backbone(input_ids=input_ids.to(device), attention_mask=mask.to(device))
                states = hidden.last_hidden_state.to(torch.float16).cpu().numpy()
                for j, i in enumerate(chosen):
                    entry = np.ascontiguousarray(states[j, : len(rows[i])])
                    self._rows[keys[i]] = entry
                    self._pending.append((keys[i], entry))
        self.computed += len(rows)
        if sum(rows.nbytes for _, rows in self._pending) >= _FLUSH_BYTES:
            self.flush()

    @contextlib.contextmanager
    def _swapped(self, embeddings: torch.nn.Module, layers: torch.nn.ModuleList) -> Iterator[None]:
        self.backbone.embeddings = embeddings
        setattr(self._holder, self._attribute, layers)
        try:
            yield
        finally:
            self.backbone.embeddings = self.embeddings
            setattr(self._holder, self._attribute, self.layers)

    @contextlib.contextmanager
    def _prefix_only(self) -> Iterator[None]:
        """The backbone as its embeddings and first ``depth`` layers, in eval mode (no dropout)."""
        modules = [self.embeddings, *self.layers[: self.depth]]
        modes = [m.training for m in modules]
        for module in modules:
            module.eval()
        try:
            with self._swapped(self.embeddings, torch.nn.ModuleList(self.layers[: self.depth])):
                yield
        finally:
            for module, mode in zip(modules, modes):
                module.train(mode)

    def top_layers(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        """The backbone's last hidden state computed from ``hidden`` (the frozen prefix's output) upwards."""
        with self._swapped(_Given(hidden), torch.nn.ModuleList(self.layers[self.depth :])):
            return self.backbone(input_ids=torch.zeros_like(attention_mask), attention_mask=attention_mask
                                 ).last_hidden_state
