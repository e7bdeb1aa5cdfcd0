"""The diff document's contract: the `nnviz-diff` JSON of docs/diff-format.md, as pure JSON.

`GraphDiff.to_dict()` writes it; `read(doc)` is how every reader takes it back (the renderings in
`nnviz.diffing.changelog`, the drift report's `report.json`): format and version checked, entries
validated, and every string made safe to print. No `Graph` here, no torch.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from nnviz import untrusted
from nnviz.errors import NNVizError

FORMAT = "nnviz-diff"
VERSION = 2
READS = (1, 2)
"""Document versions this nnviz reads (version 1 has no `info`: every change is drift)."""
Status = Literal["added", "removed", "changed", "renamed", "unchanged"]
STATUSES: tuple[Status, ...] = ("changed", "added", "removed", "renamed", "unchanged")


@functools.cache
def _schema() -> Any:
    """The fields every reader of a diff document relies on, as a pydantic model (built on first
    read: rendering or diffing snapshots never imports pydantic)."""
    from pydantic import BaseModel, ConfigDict

    class _Loose(BaseModel):
        # Readers need these fields; the rest of the document is checked by what reads it.
        model_config = ConfigDict(extra="allow", frozen=True)

    class _Entry(_Loose):
        name: str
        status: str

    class _Edge(_Loose):
        source: str
        target: str
        status: str

    class DiffDocumentV1(_Loose):
        nodes: list[_Entry]
        edges: list[_Edge]

    return DiffDocumentV1


def read(
    doc: Mapping[str, Any], source: str = "diff document", error: type[NNVizError] = NNVizError
) -> dict[str, Any]:
    """`doc` with every string made safe to print, or `error` (one line naming `source`) when it
    is not a diff document of a version this nnviz reads.

    Names and values come from snapshots, which are untrusted: control characters (newlines,
    terminal escapes) are shown as escapes so that they cannot add lines to a PR comment or a
    Mermaid chart, nor drive a terminal.
    """
    untrusted.document(doc, source, error, format=FORMAT, noun="diff document", reads=READS)
    if not _plainly_valid(doc):  # the schema names the fault (or accepts what it coerces)
        untrusted.read_document(
            doc, source, error, _schema(), format=FORMAT, noun="diff document", reads=READS
        )
    if not _MAYBE_CONTROL.search(json.dumps(doc, ensure_ascii=False, default=str)):
        return doc if isinstance(doc, dict) else dict(doc)  # nothing to escape: no copy
    return _visible(doc)  # type: ignore[no-any-return]


def _plainly_valid(doc: Mapping[str, Any]) -> bool:
    """What `_schema` requires, checked without pydantic: lists of objects with string fields."""
    sections = {"nodes": ("name", "status"), "edges": ("source", "target", "status")}
    for key, fields in sections.items():
        items = doc.get(key)
        if not isinstance(items, list):
            return False
        for item in items:
            if not isinstance(item, dict) or not all(type(item.get(f)) is str for f in fields):
                return False
    return True  # type: ignore[no-any-return]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAYBE_CONTROL = re.compile(r"[\\\x7f-\x9f\u2028\u2029]")
"""What a control character can look like in `json.dumps(..., ensure_ascii=False)`: escaped
with a backslash below 0x20, raw above. One C-speed search of the whole document rules out the
walk; a quote or backslash in a string matches too, which only costs the walk."""


def _visible(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
    if isinstance(value, Mapping):
        return {_visible(k): _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


Place = tuple[str, str | None, str | None]
"""An entry's status, enclosing module's name (or None) and module path (or None)."""


class Shape(Mapping[str, Place]):
    """The `Place` of each entry by name, as `fold_root` walks them: a view of the entries that
    describes one when asked (a walk asks of a few; a large diff has 100,000 entries)."""

    def __init__(self, by_name: Mapping[str, Any], describe: Callable[[Any], Place]) -> None:
        self._by_name, self._describe = by_name, describe

    def __getitem__(self, name: str) -> Place:
        return self._describe(self._by_name[name])

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def fold_root(name: str, entries: Mapping[str, Place]) -> str:
    """The topmost enclosing module entry with the same added/removed status as `name`.

    `entries` maps a name to (status, enclosing module's name or None, module path or None);
    the renderings call this on the JSON document, the builder on its own entries.
    """
    status = entries[name][0]
    if status not in ("added", "removed"):
        return name
    root, current = name, name
    seen = {name}
    while True:
        _, scope, path = entries[current]
        up = path if path is not None and path != current and path in entries else scope
        if up is None or up not in entries or up in seen or entries[up][0] != status:
            return root
        seen.add(up)
        root = current = up
