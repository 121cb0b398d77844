"""Data loaders; see registry.py for the list and load.py for the entry points."""
