"""Data loaders; see registry.py for the list and load.py for the entry points."""

from engine.data.errors import DataError, DataNotFoundError
from engine.data.load import (
    load,
    load_dev_set,
    load_eval_set,
    load_training_data,
    load_training_set,
    load_training_sources,
)

__all__ = [
    "DataError", "DataNotFoundError", "load", "load_dev_set", "load_eval_set", "load_training_data",
    "load_training_set", "load_training_sources",
]
