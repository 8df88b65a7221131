"""What a filter answers: keep or drop, a stable reason, and the fields it measured.

A filter is any callable ``(Document) -> Verdict``. Reasons read ``<filter>.<rule>``
(``gopher_repetition.dup_line_frac``) so the funnel groups them by filter and a reason never
changes meaning between releases. Scores travel in ``updates`` so they land on the document
whether it is kept or dropped: a rejected page in the rejects output shows the score that
sank it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from filters.document import Document


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    reason: str = ""
    updates: dict[str, Any] = field(default_factory=dict)

    KEEP: ClassVar[Verdict]

    def __post_init__(self) -> None:
        if self.keep == bool(self.reason):
            raise ValueError("a kept document has no reason and a dropped one must have one")

    @classmethod
    def drop(cls, reason: str, **updates: Any) -> Verdict:
        return cls(False, reason, updates)

    @classmethod
    def keep_with(cls, **updates: Any) -> Verdict:
        return cls(True, "", updates)

    def apply(self, doc: Document) -> Document:
        """The document with this verdict's updates applied (the same object if there are none)."""
        return doc.replace(**self.updates) if self.updates else doc


Verdict.KEEP = Verdict(True)


class Filter(Protocol):
    """A pure decision on one document. ``name`` prefixes its reasons and names its switch."""

    name: str

    def __call__(self, doc: Document) -> Verdict: ...
