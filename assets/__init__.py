"""Shipped data subsets and the tokenizer, with their licences (see README.md files inside)."""
