"""The colours of the diff's statuses, one palette for every picture of a diff: the Graphviz
drawing, the interactive page and the Mermaid chart of a PR comment (GitHub's Primer colours).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Colours:
    """How an entry of one status is drawn: box fill, border (and edge) line, label text."""

    fill: str
    line: str
    text: str


PALETTE: dict[str, Colours] = {
    "added": Colours("#dafbe1", "#1a7f37", "#1a7f37"),
    "removed": Colours("#ffebe9", "#cf222e", "#cf222e"),
    "changed": Colours("#fff1e5", "#fb8500", "#953800"),
    "renamed": Colours("#ddf4ff", "#0969da", "#0969da"),
    "unchanged": Colours("#f6f8fa", "#afb8c1", "#6e7781"),
}
