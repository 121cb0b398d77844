"""Token id rows padded into one batch: shared by the encoder and the frozen-prefix cache below it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor


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
