"""Decisions about single documents: pure functions and small callables, no Beam, no I/O.

Everything that decides whether a document is kept lives here, so it can be unit-tested on a
string; ``pipeline/`` only wires these callables into Beam.
"""

from filters.document import Document
from filters.verdict import Filter, Verdict

__all__ = ["Document", "Filter", "Verdict"]
