"""The words every room shares: run and study settings, records, languages, strategies, datasets.

Pure data and validation (no torch, no Qt, no database), so the engine, the
storage, the GUI and the shell all import it and none of them imports another
to get it.
"""
