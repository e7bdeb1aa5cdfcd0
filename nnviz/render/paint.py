"""Per-node and per-edge overrides layered on a drawing (how the diff highlights changes).

`to_dot(graph, style, paint)` draws `graph` as usual, then applies `paint`: a node's fill and
border colour, line style (`dashed`, `bold`, ...) and extra label lines (`kernel_size (3, 3) →
(5, 5)`), an edge's colour and style. Keys are the graph's node ids and (source, target) pairs;
keys naming nothing in the graph are ignored. Every text is escaped by the builder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class NodePaint:
    """Overrides for one node; `None` keeps the builder's choice."""

    fill: str | None = None
    """Fill colour (a Graphviz colour: `#ffdddd`, `palegreen`)."""
    border: str | None = None
    """Border colour."""
    line: str | None = None
    """Border line style: `dashed`, `dotted`, `bold`, `solid`."""
    penwidth: float | None = None
    """Border width."""
    lines: tuple[str, ...] = ()
    """Extra label lines shown under the title (plain text; escaped)."""
    badge: str | None = None
    """A short tag shown beside the title, e.g. `added`, `removed`, `changed`."""


@dataclass(frozen=True)
class EdgePaint:
    """Overrides for one edge; `None` keeps the builder's choice."""

    color: str | None = None
    line: str | None = None
    """`dashed`, `dotted`, `bold`, `solid`."""
    penwidth: float | None = None
    label: str | None = None
    """Replaces the edge's spec label (plain text; escaped)."""


@dataclass(frozen=True)
class Repeat:
    """Sibling blocks drawn once (see `nnviz.render.repeats`): the drawn block stands for all."""

    title: str
    """What its path reads as: `blocks.{0..11}`."""
    count: int
    """How many sibling blocks it stands for (the `×12` beside the title)."""
    times: int = 0
    """How many blocks it stands for in all (inside a block drawn for several: `count` times
    theirs); 0 means `count`. A collapsed node of it counts the ops of one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", self.times or self.count)


@dataclass(frozen=True)
class Paint:
    """All overrides of one drawing, plus an optional subtitle under the graph title."""

    nodes: Mapping[str, NodePaint] = field(default_factory=dict)
    edges: Mapping[tuple[str, str], EdgePaint] = field(default_factory=dict)
    subtitle: str | None = None
    dim: bool = False
    """Draw nodes without a paint entry faded (grey text, white fill): the diff's context."""
    repeats: Mapping[str, Repeat] = field(default_factory=dict)
    """Drawn blocks standing for several, by module path (`blocks.0` → `blocks.{0..11}` ×12):
    names inside them read with the title (`blocks.{0..11}.attn.norm`)."""

    _names: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "edges", MappingProxyType(dict(self.edges)))
        object.__setattr__(self, "repeats", MappingProxyType(dict(self.repeats)))
        if self.repeats:
            paths = sorted(self.repeats, key=len, reverse=True)  # the innermost block wins
            pattern = "|".join(map(re.escape, paths))
            object.__setattr__(self, "_names", re.compile(rf"(?<![\w.])(?:{pattern})(?!\w)"))

    def shown(self, text: str) -> str:
        """`text` with every name inside a repeated block written with its title."""
        if self._names is None:
            return text
        return self._names.sub(lambda found: self.repeats[found.group()].title, text)

    def node(self, node_id: str) -> NodePaint | None:
        return self.nodes.get(node_id)

    def edge(self, source: str, target: str) -> EdgePaint | None:
        return self.edges.get((source, target))
