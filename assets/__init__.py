"""Shipped data subsets and the tokenizer, with their licences (see README.md files inside)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
