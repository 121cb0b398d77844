"""hybridscale: the application shell (CLI and demo) that joins engine, storage and gui."""

__version__ = "0.1.0"
