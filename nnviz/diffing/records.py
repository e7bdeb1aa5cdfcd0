"""What a diff says, as typed records: the changelog's entries, their places, their field changes
with old and new values, their followers and counts.

`nnviz.diffing.entries.changelog_of(doc)` builds a `Changelog` from the diff document; grouping
across places (`nnviz.diffing.grouping`) and folding under a cause (`nnviz.diffing.folding`)
work on these records; `nnviz.diffing.changelog` renders them as text, markdown and Mermaid,
and every reader (the PR comment, the HTML page, annotations) reads them, never the text.

Places are structured brace patterns (`Places`): a pattern is a tuple of components, each a
tuple of alternatives, and stands for every combination of them, as a shell reads braces
(`blocks.{0..11}.norm{1,2}`). Records are frozen; a value is shown by `nnviz.values`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from nnviz.values import Value

Component = tuple[str, ...]
"""One dot-separated component of a path, as its alternatives (one for a plain name)."""
Pattern = tuple[Component, ...]

_NUMBERED = re.compile(r"^(.*?)(0|[1-9]\d*)$")
_HEADED = re.compile(r"^(\d+)([:#].*)?$")
"""A component that is a number, perhaps with a call count or an old-side mark (`3:1`, `3#old`)."""


class _Absent:
    """The side of a change where the field does not exist (an hparam only one class has)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class _Varies:
    """A setting whose value differs across the places of one entry (shown `…`)."""

    def __repr__(self) -> str:
        return "…"


VARIES: Any = _Varies()


@dataclass(frozen=True)
class Places:
    """One or more places as brace patterns; `str()` is the pattern text, `names()` every place."""

    patterns: tuple[Pattern, ...]

    @classmethod
    def of(cls, name: str) -> Places:
        """One place (a module path or node id; `""` is the root model)."""
        return cls((tuple((part,) for part in name.split(".")),))

    def names(self) -> list[str]:
        """Every place the patterns stand for, in order (`a.{0,1}.b` -> `a.0.b`, `a.1.b`)."""
        out: list[str] = []
        for pattern in self.patterns:
            names = [""]
            for i, alts in enumerate(pattern):
                names = [(n + "." if i else n) + alt for n in names for alt in alts]
            out.extend(names)
        return out

    @property
    def single(self) -> str | None:
        """The one place's name when there is exactly one, else None."""
        if len(self.patterns) == 1 and all(len(c) == 1 for c in self.patterns[0]):
            return ".".join(c[0] for c in self.patterns[0])
        return None

    def __str__(self) -> str:
        texts = [".".join(component_text(c) for c in p) for p in self.patterns]
        return ", ".join(t if t else "(root)" for t in texts)

    def blanked(self, numbers: list[int]) -> Places:
        """These places with every numbered component of a named path as a blank (its number
        appended to `numbers`): what is left is the same in sibling blocks."""
        return Places(tuple(_blank(p, numbers) for p in self.patterns))

    def filled(self, columns: Iterator[tuple[int, ...]]) -> Places:
        """The blanks filled, each with the numbers its column took."""
        return Places(tuple(_fill(p, columns) for p in self.patterns))


_BLANK = "\x00"


def _blank(pattern: Pattern, numbers: list[int]) -> Pattern:
    """Blank the numbered components up to the first set (a set already stands for several)."""
    head = []
    for alts in pattern:
        if len(alts) > 1:
            break
        head.append(alts[0])
    first = next((c for c in head if not c.isdigit()), "")
    if not (first[:1].isascii() and (first[:1].isalpha() or first[:1] == "_")):
        return pattern  # no named component (`0`, `1.2`): a position, not a path in a block
    out: list[Component] = []
    for i, alts in enumerate(pattern):
        found = _HEADED.match(alts[0]) if i < len(head) else None
        if found:
            numbers.append(int(found.group(1)))
            out.append((_BLANK + (found.group(2) or ""),))
        else:
            out.append(alts)
    return tuple(out)


def _fill(pattern: Pattern, columns: Iterator[tuple[int, ...]]) -> Pattern:
    out: list[Component] = []
    for alts in pattern:
        if alts[0].startswith(_BLANK):
            tail = alts[0][1:]
            out.append(tuple(f"{n}{tail}" for n in sorted(set(next(columns)))))
        else:
            out.append(alts)
    return tuple(out)


def span(values: list[int]) -> str:
    """`3`, `{0,1}`, `{0..11}` (three or more consecutive), `{0,2,5}`."""
    unique = sorted(set(values))
    if len(unique) == 1:
        return str(unique[0])
    if len(unique) > 2 and unique == list(range(unique[0], unique[-1] + 1)):
        return f"{{{unique[0]}..{unique[-1]}}}"
    return "{" + ",".join(map(str, unique)) + "}"


def component_text(alts: Component) -> str:
    """`{0..11}`, `{3,4}:1`, `encoder_layer_{0,1}` (one name, numbered), else `{query,key}`."""
    if len(alts) == 1:
        return alts[0]
    headed = [_HEADED.match(a) for a in alts]
    if all(headed) and len({m.group(2) for m in headed if m}) == 1:
        first = headed[0]
        assert first is not None
        return span([int(m.group(1)) for m in headed if m]) + (first.group(2) or "")
    numbered = [m for m in map(_NUMBERED.match, alts) if m is not None]
    if len(numbered) == len(alts) and len({m.group(1) for m in numbered}) == 1:
        return numbered[0].group(1) + span([int(m.group(2)) for m in numbered])
    return "{" + ",".join(alts) + "}"


@dataclass(frozen=True)
class FieldChange:
    """One field of an entry: `key` as in the diff document (`hparams.kernel_size`, `inputs.0`,
    `spec`, `class`), its `old` and `new` values (`ABSENT` where a side lacks the field; an
    input's values are the `Places` of the node it reads, a buffer or parameter read's the
    `Places` of that tensor)."""

    key: str
    old: Value | Places
    new: Value | Places
    note: str | None = None
    """How two classes relate (`a subclass`, `same settings`), for a class change."""
    settings: tuple[tuple[str, Value], ...] | None = None
    """A class change's settings only one of the two classes has (`in_channels=3`; `ABSENT`
    as the value: `no bias`), when the document records them apart from `note`."""
    slot: Places | None = None
    """What the key names within its field (`kernel_size`, an argument slot `shape.2`, an
    input slot `tensors.0`), as a place: slots numbered alike group like places."""

    @property
    def field(self) -> str:
        """`hparams`, `parameters`, `inputs`, `args`, `spec`, `class`, ..."""
        return self.key.partition(".")[0]

    def map_places(self, f: Callable[[Places], Places]) -> FieldChange:
        """The change with `f` applied to its slot and to every value that names places."""
        slot = f(self.slot) if self.slot is not None else None
        old = f(self.old) if isinstance(self.old, Places) else self.old
        new = f(self.new) if isinstance(self.new, Places) else self.new
        return FieldChange(self.key, old, new, self.note, self.settings, slot)


@dataclass(frozen=True)
class Size:
    """How big an added or removed module is: its nodes and parameters (several values once
    entries of several sizes join: shown as a range)."""

    nodes: tuple[int, ...]
    params: tuple[int, ...]


@dataclass(frozen=True)
class Inside:
    """What changed inside a module whose class changed, or whose forward was rewritten, with
    names relative to it."""

    modules: tuple[tuple[str, str, tuple[Places, ...]], ...] = ()
    """(mark `+`/`−`/`~`, what: a class or `(settings)`, the places)."""
    swaps: tuple[tuple[Places, str, str], ...] = ()
    """(place, old class, new class)."""
    ops: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    """(mark, ((op kind, count), ...)) for ops added `+`, removed `−`, changed `~`."""

    def __bool__(self) -> bool:
        return bool(self.modules or self.swaps or self.ops)


Kind = Literal["changed", "added", "removed", "renamed", "moved", "ops", "follows"]
"""`changed` (`~`), `added` (`+`), `removed` (`-`), `renamed`/`moved` (`→`, a rename alone),
`ops` (a module whose forward rewrote its own ops), `follows` (a consequence, `↳`)."""


@dataclass(frozen=True)
class Folded:
    """Consequences counted on one line: `what` is `output` (shapes that follow), `input`
    (inputs rewired) or `more` (the rest of a long list); `ops` counts the nodes by op."""

    what: Literal["output", "input", "more"]
    nodes: int
    ops: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Entry:
    """One changelog entry: a change at one or more places (`count` of them) and what follows."""

    kind: Kind
    places: Places
    title: str = ""
    """The module's class (short) or the op."""
    changes: tuple[FieldChange, ...] = ()
    size: Size | None = None
    """Nodes and parameters of an added or removed module."""
    inside: Inside | None = None
    was: Places | None = None
    """The old name of a renamed or moved entry (`kind` says which, or it has changes too)."""
    moved: bool = False
    """Whether `was` → `places` is a move (else a rename in the same parent)."""
    followers: tuple[Entry | Folded, ...] = ()
    count: int = 1
    """How many places the entry stands for (its `×N`)."""
    cost: Any = None
    """The cost facts of this entry (compute, activations), when the diff knows them."""
    checkpoint: Any = None
    """The checkpoint facts of this entry (keys renamed, shapes), when the diff knows them."""


@dataclass(frozen=True)
class Shift:
    """A run of numbered layers that all moved alike: `old_first … old_last` moved to
    `new_first … new_last` (`layers` of them), under `old_parent` / `new_parent`."""

    old_parent: str
    new_parent: str
    old_first: int
    old_last: int
    new_first: int
    new_last: int

    @property
    def layers(self) -> int:
        return self.old_last - self.old_first + 1


@dataclass(frozen=True)
class Orphans:
    """Consequences of what has no entry of its own (information): listed together."""

    followers: tuple[Entry | Folded, ...]


Item = Entry | Shift | Orphans


@dataclass(frozen=True)
class Info:
    """Differences that are not drift: a count per kind, and the attribute-only entries."""

    counts: tuple[tuple[str, int], ...] = ()
    attributes: tuple[Entry, ...] = ()


TALLIED = ("changed", "added", "removed", "renamed")
"""The statuses the changelog counts entries of, in the order its totals name them."""


@dataclass(frozen=True)
class Changelog:
    """Everything a rendering of one diff says.

    `counts` are the changelog's totals per status (entries, as the text counts them),
    `propagated` the entries that only follow another change; `params` (old, new).
    `cost` and `checkpoint` hold the diff's graph-level facts of those kinds, when known;
    `export` exportability on both sides (`nnviz.diffing.exportability.ExportChange`)."""

    identical: bool
    strict: bool
    items: tuple[Item, ...]
    counts: tuple[tuple[str, int], ...]
    propagated: int
    params: tuple[int, int]
    nodes: int
    """Data-flow nodes of the new side."""
    info: Info = field(default_factory=Info)
    names: tuple[str, str] = ("old", "new")
    cost: Any = None
    checkpoint: Any = None
    """The `nnviz.diffing.checkpoint.Verdict`, when the document has one."""
    verbose: bool = False
    """Whether every change (and every checkpoint key) is listed."""
    export: Any = None

    @property
    def tally(self) -> dict[str, int]:
        """The counts every rendering of the diff shows (the text's totals line, the JSON
        summary, the markdown and PR tables, the policy): entries per status, then
        `propagated`, the changes that only follow another (`downstream`)."""
        return {**dict.fromkeys(TALLIED, 0), **dict(self.counts), "propagated": self.propagated}

    @property
    def entries(self) -> list[Entry]:
        """The entries with a line of their own (`Shift` and `Orphans` aside)."""
        return [item for item in self.items if isinstance(item, Entry)]
