"""What turns a transformer's token vectors into one text vector: pooling modes and Dense layers.

Every mode computes what sentence-transformers' ``Pooling`` module computes
for a right-padded batch (``sentence_transformers/sentence_transformer/
modules/pooling.py``, 6.2), and :class:`DenseLayer` is its ``Dense`` module
with the same parameter names, so a sentence-transformers folder encodes the
same here as there (``tests/engine/test_st_folders.py`` compares the two).
We compute it ourselves rather than run their modules because the trainer
needs one differentiable ``forward(input_ids, attention_mask)`` over our own
batching, and because their loader imports any class a folder names.
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor

from vocabulary.config import POOLINGS

#: sentence-transformers' default when a Dense config names no activation.
DEFAULT_ACTIVATION = "torch.nn.modules.activation.Tanh"


class HeadError(ValueError):
    """A pooling mode or Dense layer we cannot build."""


def exclude_prompt(attention_mask: Tensor, prompt_length: int) -> Tensor:
    """The mask without its first ``prompt_length`` positions (the ``[CLS]`` and the prompt's tokens).

    sentence-transformers' ``include_prompt=False``: the prompt is still
    attended to, only left out of the pooling. A copy; the backbone keeps
    the full mask.
    """
    mask = attention_mask.clone()
    mask[:, :prompt_length] = 0
    return mask


def pool(hidden: Tensor, mask: Tensor, mode: str) -> Tensor:
    """``[B, H]`` from token vectors ``[B, T, H]`` and a right-padded ``[B, T]`` 0/1 mask."""
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        # The first counted position: [CLS], or the first token after an excluded prompt.
        return hidden[rows, mask.to(torch.int).argmax(dim=1)]
    if mode == "max":
        return hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    if mode in ("mean", "mean_sqrt_len_tokens"):
        total, count = (hidden * weights).sum(dim=1), weights.sum(dim=1).clamp(min=1e-9)
        return total / (count if mode == "mean" else count.sqrt())
    if mode == "weightedmean":
        positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
        weighted = weights * positions
        return (hidden * weighted).sum(dim=1) / weighted.sum(dim=1).clamp(min=1e-9)
    if mode == "lasttoken":
        width = mask.shape[1]
        found, from_end = mask.flip(1).max(dim=1)
        last = width - 1 - torch.where(found == 0, width - 1, from_end)
        return (hidden * weights)[rows, last]
    raise HeadError(f"pooling: unknown {mode!r}; use one of {', '.join(POOLINGS)}")


def torch_activation(name: str) -> torch.nn.Module:
    """A ``torch.nn`` module class by its dotted name, instantiated without arguments.

    Only names under ``torch.nn`` are imported: a model folder that names
    anything else would have us run its own code, which we never do (there
    is no ``trust_remote_code`` here).
    """
    module_name, _, class_name = name.rpartition(".")
    if not (module_name == "torch.nn" or module_name.startswith("torch.nn.")):
        raise HeadError(f"activation {name!r} is not a torch.nn class; hybridscale never runs a model's own code")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise HeadError(f"activation {name!r} does not exist in this torch") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise HeadError(f"activation {name!r} is not a torch.nn module")
    try:
        return cls()
    except TypeError:
        raise HeadError(f"activation {name!r} needs arguments; only argument-free activations are supported") from None


class DenseLayer(torch.nn.Module):
    """sentence-transformers' ``Dense``: ``activation(linear(x))``; state-dict keys as in its weight files."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = DEFAULT_ACTIVATION):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation_function = torch_activation(activation)
        cls = type(self.activation_function)
        self.activation_name = f"{cls.__module__}.{cls.__qualname__}"

    def forward(self, vectors: Tensor) -> Tensor:
        return self.activation_function(self.linear(vectors))

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def config(self) -> dict[str, object]:
        """The legacy ``N_Dense/config.json`` (every sentence-transformers version reads it)."""
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.linear.bias is not None, "activation_function": self.activation_name}

    def describe(self) -> str:
        return f"Dense {self.in_features}->{self.out_features} {self.activation_name.rsplit('.', 1)[-1]}"
