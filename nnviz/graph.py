"""The one data model: a traced architecture as a data-flow graph plus its module tree.

`Graph` wraps a `networkx.DiGraph` whose node keys are structural ids and whose edges carry the
argument slots they feed, together with the module tree (every module path with its class,
hyperparameters, own parameter shapes and recursive parameter count) and metadata. It is an
immutable value: transforms return new graphs. Pure Python and networkx; no torch, no graphviz.

Node ids are structural:
- a module call is its path (`layer1.0.conv1`); the root module is `""` in the tree only;
- a function or method call is `<scope>.<op>` (`layer1.0.add`, or `add` at the top level);
- a second call of the same module or op in the same scope gets `:1`, `:2`, ...
  (`layer2.1.relu:1`);
- inputs are `input:<argument name>` and the single output is `output`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from nnviz.values import Value, typed_spec

if TYPE_CHECKING:
    import networkx as nx

NodeKind = Literal["input", "output", "module", "function", "method"]
NODE_KINDS: tuple[str, ...] = ("input", "output", "module", "function", "method")
EXTRA_STATE = "_extra_state"
"""The `state_dict()` key torch gives a module's `get_extra_state()` value."""


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


_Record = TypeVar("_Record")
NODE_FROZEN = ("args", "meta", "cost")
"""The mappings `Node.__post_init__` makes read-only (`spec` stays a plain value)."""
MODULE_FROZEN = ("hparams", "parameters", "ties", "buffers", "dtypes")
"""The mappings `Module.__post_init__` makes read-only."""
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def assemble(cls: type[_Record], values: dict[str, Any], frozen: tuple[str, ...] = ()) -> _Record:
    """A frozen dataclass (`Node`, `Edge`, `Module`, the diff's records) from `values` already
    in their final form: every field given, sequences tuples, and the mappings `__post_init__`
    makes read-only (`frozen`, e.g. `NODE_FROZEN`) fresh dicts nobody else holds. Loading or
    diffing a large graph makes one per record; this skips `__init__`'s per-field
    `object.__setattr__` and `__post_init__`'s copies (half the cost), and is equal to
    `cls(**values)`."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    if values.keys() != names:  # a field added since: the ordinary constructor fills it in
        return cls(**values)
    for key in frozen:
        if type(values[key]) is dict:
            values[key] = MappingProxyType(values[key])
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record


@dataclass(frozen=True, eq=True)
class Module:
    """One entry of the module tree, as `named_modules()` lists it."""

    path: str
    """Qualified name (`layer1.0.conv1`); the root module is `""`."""
    cls: str
    """Qualified class name, e.g. `torch.nn.Conv2d` or `torchvision.models.resnet.BasicBlock`."""
    params: int = 0
    """Number of parameters of this module and all its children."""
    hparams: Mapping[str, Value] = field(default_factory=dict)
    """Constructor-configured hyperparameters (Conv2d's channels, kernel_size, stride, ...)."""
    parameters: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Shapes of this module's own parameters (not its children's), by name."""
    bases: tuple[str, ...] = ()
    """The public module classes `cls` derives from, nearest first (`torch.nn.LayerNorm` for a
    library's own LayerNorm subclass); `nn.Module` and private classes are left out."""
    ties: Mapping[str, str] = field(default_factory=dict)
    """Own parameters and persistent buffers that are another's, by name: the qualified name they
    were first registered under (`{"weight": "shared.weight"}` for an embedding tied to a shared
    one)."""
    buffers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Shapes of this module's own persistent buffers (those `state_dict()` holds), by name."""
    dtypes: Mapping[str, str] = field(default_factory=dict)
    """The dtype (`float32`) of each own parameter and persistent buffer, by name."""
    extra_state: bool = False
    """Whether `state_dict()` holds this module's `_extra_state` (its class defines
    `get_extra_state`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bases", tuple(self.bases))
        object.__setattr__(self, "ties", _frozen(dict(self.ties)))
        object.__setattr__(self, "hparams", _frozen(self.hparams))
        object.__setattr__(
            self, "parameters", _frozen({k: tuple(v) for k, v in self.parameters.items()})
        )
        object.__setattr__(self, "buffers", _frozen({k: tuple(v) for k, v in self.buffers.items()}))
        object.__setattr__(self, "dtypes", _frozen(dict(self.dtypes)))

    @property
    def state_keys(self) -> dict[str, tuple[int, ...] | None]:
        """This module's own `state_dict()` entries by local name: parameters, then persistent
        buffers, each by name (as a snapshot stores them), with their shapes, then
        `_extra_state` (no shape)."""
        if not (self.parameters or self.buffers or self.extra_state):
            return {}  # most modules of a large model (containers, activations): no sort, no copy
        keys: dict[str, tuple[int, ...] | None] = {
            **dict(sorted(self.parameters.items())),
            **dict(sorted(self.buffers.items())),
        }
        if self.extra_state:
            keys[EXTRA_STATE] = None
        return keys

    @property
    def name(self) -> str:
        """The last component of the path (`conv1`), `""` for the root."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def class_name(self) -> str:
        """The class name without its module (`Conv2d`)."""
        return self.cls.rsplit(".", 1)[-1]

    @property
    def depth(self) -> int:
        """0 for the root, 1 for its children, ..."""
        return path_depth(self.path)


@dataclass(frozen=True, eq=True)
class Node:
    """One operation of the data flow."""

    id: str
    kind: NodeKind
    op: str
    """For modules the class (`torch.nn.Conv2d`); for functions the qualified function
    (`torch.flatten`, `operator.add`); for methods the method name (`view`); for inputs the
    argument name; `output` for the output."""
    scope: str = ""
    """Path of the enclosing module (`""` at the top level)."""
    module: str | None = None
    """For a module node, the module's path; `None` for every other kind."""
    args: Mapping[str, Value] = field(default_factory=dict)
    """Constant arguments: positional ones keyed `"0"`, `"1"`, ..., keyword ones by name."""
    spec: Value | None = None
    """What this node outputs (a tensor spec or nested value) when traced with data."""
    meta: Mapping[str, Value] = field(default_factory=dict)
    """Cosmetic information that never counts as architecture."""
    cost: Mapping[str, Value] | None = None
    """What this op costs when traced with data (`nnviz.costs`): `macs` (multiply-accumulates),
    `out_bytes` (its new output tensors) and `uncounted` (ops without a formula, by name);
    None when unknown (traced without data, an older snapshot). Never architecture."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", _frozen(self.args))
        object.__setattr__(self, "meta", _frozen(self.meta))
        if self.cost is not None:
            object.__setattr__(self, "cost", _frozen(self.cost))

    @property
    def title(self) -> str:
        """Short op name: `Conv2d`, `add`, `flatten`, `x`."""
        return self.op.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Source:
    """Where a node's call is written in the model's code: the innermost frame outside torch
    and nnviz (`self.conv(x)` in the parent's forward for a module call, `x + y` for an op).
    A transient annotation of a traced graph (`Graph.sources`): never saved, never compared."""

    file: str
    """The file as Python ran it (absolute)."""
    line: int
    shown: str
    """The file as a reader knows it: relative to the working folder when inside it, else to
    the import root that holds it (`torchvision/models/resnet.py`)."""

    def __str__(self) -> str:
        return f"{self.shown}:{self.line}"


@dataclass(frozen=True, eq=True, order=True)
class Edge:
    """Data flowing from `source`'s output into the argument `slots` of `target`."""

    source: str
    target: str
    slots: tuple[str, ...] = ()
    """Argument positions (`"0"`) or keywords the value feeds; nested ones as `"0.1"`."""


_NO_SOURCES: Mapping[str, Source] = MappingProxyType({})


def path_depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


def parent_path(path: str) -> str | None:
    """`layer1.0` -> `layer1`, `layer1` -> `""`, `""` -> None."""
    if path == "":
        return None
    return path.rsplit(".", 1)[0] if "." in path else ""


def is_within(path: str, ancestor: str) -> bool:
    """Whether module `path` is `ancestor` or lies below it."""
    return ancestor == "" or path == ancestor or path.startswith(ancestor + ".")


def _unique(
    records: Iterable[_Record], key: Callable[[_Record], str], what: str
) -> dict[str, _Record]:
    """`records` by `key`; a key met twice (looked for when the counts differ) is a ValueError."""
    listed = list(records)
    out = {key(record): record for record in listed}
    if len(out) != len(listed):
        seen: set[str] = set()  # linear: a hostile snapshot may hold 100,000 ids
        twice = next(k for k in map(key, listed) if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate {what} {twice!r}")
    return out


class Graph:
    """An immutable traced architecture. Build it once; transforms return new graphs."""

    __slots__ = (
        "_children",
        "_meta",
        "_modules",
        "_nodes",
        "_nx",
        "_pred",
        "_printable",
        "_sources",
        "_succ",
    )

    def __init__(
        self,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        modules: Iterable[Module],
        meta: Mapping[str, Value] | None = None,
        *,
        sources: Mapping[str, Source] | None = None,
        printable: bool = False,
    ) -> None:
        """`printable`: its maker knows that no string in it holds a control character (a
        snapshot whose text has no escape at all), so renderings need not look for one; it
        never counts in equality."""
        self._printable = printable
        # Plain dicts, not a networkx graph: loading, diffing and drawing a snapshot never pay
        # for importing networkx (a third of `import nnviz`); `nx` builds one on demand.
        found: dict[str, Node] = _unique(nodes, attrgetter("id"), "node id")
        succ: dict[str, dict[str, Edge]] = {node_id: {} for node_id in found}
        pred: dict[str, dict[str, Edge]] = {node_id: {} for node_id in found}
        for edge in edges:
            source, target = edge.source, edge.target
            out, into = succ.get(source), pred.get(target)
            if out is None or into is None:
                end = source if out is None else target
                raise ValueError(f"edge {source!r} -> {target!r}: no node {end!r}")
            if target in out:
                raise ValueError(f"duplicate edge {source!r} -> {target!r}")
            out[target] = into[source] = edge
        mods: dict[str, Module] = _unique(modules, attrgetter("path"), "module path")
        self._nodes, self._succ, self._pred = found, succ, pred
        self._nx: Any = None
        self._modules: Mapping[str, Module] = MappingProxyType(mods)
        self._meta: Mapping[str, Value] = MappingProxyType(dict(meta or {}))
        children: dict[str, list[Module]] = {}
        for path, module in mods.items():
            parent = parent_path(path)
            if parent is not None:
                children.setdefault(parent, []).append(module)
        self._children = children
        self._sources: Mapping[str, Source] = _NO_SOURCES
        if sources:
            kept = {k: v for k, v in sources.items() if k in found}
            self._sources = MappingProxyType(kept) if kept else _NO_SOURCES

    # --- access -----------------------------------------------------------------------------

    @property
    def nx(self) -> nx.DiGraph:
        """A frozen networkx view, built on first use: node key = id (attr `node`), edge attr
        `edge`."""
        if self._nx is None:
            import networkx

            g = networkx.DiGraph()
            g.add_nodes_from((node_id, {"node": node}) for node_id, node in self._nodes.items())
            g.add_edges_from((e.source, e.target, {"edge": e}) for e in self.edges)
            self._nx = networkx.freeze(g)
        return self._nx

    @property
    def nodes(self) -> list[Node]:
        """Nodes in trace order."""
        return list(self._nodes.values())

    @property
    def edges(self) -> list[Edge]:
        """Edges by source node (in node order), then in insertion order."""
        return [edge for out in self._succ.values() for edge in out.values()]

    @property
    def modules(self) -> Mapping[str, Module]:
        """The module tree by path, in `named_modules()` order (root `""` first)."""
        return self._modules

    @property
    def meta(self) -> Mapping[str, Value]:
        """Model name (`name`), `tracer`, `versions`, `inputs` (the traced input specs or None)."""
        return self._meta

    @property
    def name(self) -> str:
        return str(self._meta.get("name", "model"))

    @property
    def printable(self) -> bool:
        """Known to hold no control character in any string (see `__init__`); False when unsure."""
        return self._printable

    @property
    def sources(self) -> Mapping[str, Source]:
        """Where each node's call is written (`Source`), by node id, for the nodes whose tracer
        saw it; empty for a loaded snapshot. Shown to readers (the HTML details, the PR
        annotation of a changed op) and nowhere else: not saved, not part of `==`, never
        compared by a diff (line numbers move with every edit of the file)."""
        return self._sources

    def node(self, node_id: str) -> Node:
        return self._nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def predecessors(self, node_id: str) -> list[str]:
        return list(self._pred[node_id])

    def successors(self, node_id: str) -> list[str]:
        return list(self._succ[node_id])

    def in_edges(self, node_id: str) -> list[Edge]:
        """The edges into `node_id`, in insertion order."""
        return list(self._pred[node_id].values())

    def edge(self, source: str, target: str) -> Edge:
        return self._succ[source][target]

    def edge_spec(self, source: str, target: str) -> Any:
        """What flows on an edge, typed: a `TensorSpec` (`str()` shows `[1, 512]`), a tuple, list
        or dict of them, or a plain value; None when the graph was traced without data."""
        return typed_spec(self.edge_value(source, target))

    def edge_value(self, source: str, target: str) -> Value | None:
        """What flows on an edge in its stored form (`{"$tensor": ...}`): the source's output,
        or for a collapsed node with several outputs, the one that reaches `target`."""
        node = self.node(source)
        per_target = node.meta.get("edge_specs")
        if isinstance(per_target, Mapping) and target in per_target:
            return per_target[target]
        return node.spec

    def children(self, path: str) -> list[Module]:
        """Direct children of module `path`, in tree order."""
        return list(self._children.get(path, ()))

    def module_of(self, node: Node) -> Module | None:
        """The module a module node calls, or None."""
        return self._modules.get(node.module) if node.module is not None else None

    @property
    def total_params(self) -> int:
        root = self._modules.get("")
        return root.params if root is not None else 0

    @property
    def traced_with_data(self) -> bool:
        return self._meta.get("inputs") is not None

    # --- value semantics ----------------------------------------------------------------------

    def replace(
        self,
        nodes: Iterable[Node] | None = None,
        edges: Iterable[Edge] | None = None,
        modules: Iterable[Module] | None = None,
        meta: Mapping[str, Value] | None = None,
    ) -> Graph:
        """A new graph with the given parts replaced; the sources of the nodes it keeps go
        with it."""
        return Graph(
            self.nodes if nodes is None else nodes,
            self.edges if edges is None else edges,
            self._modules.values() if modules is None else modules,
            self._meta if meta is None else meta,
            sources=self._sources,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            self.nodes == other.nodes
            and sorted(self.edges) == sorted(other.edges)
            and list(self._modules.values()) == list(other._modules.values())
            and dict(self._meta) == dict(other._meta)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<Graph {self.name!r}: {len(self)} nodes, {len(self.edges)} edges, "
            f"{len(self._modules)} modules, {self.total_params:,} params>"
        )

    # --- Jupyter ------------------------------------------------------------------------------

    def _repr_svg_(self) -> str:
        """Inline display in Jupyter: the drawing at the default depth (2), as SVG."""
        from nnviz.render.notebook import svg  # lazy: the graph floor never needs graphviz

        return svg(self)

    def _repr_html_(self) -> str | None:
        """Inline display in Jupyter: the interactive page (expand, search, details) in a
        sandboxed frame; None for a graph too large to inline, which then shows as SVG."""
        from nnviz.render.notebook import notebook_html  # lazy, like _repr_svg_

        return notebook_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter's rich display: the interactive page when not too large, the SVG drawing
        (for frontends without HTML, and large graphs) and the plain repr."""
        bundle = {"image/svg+xml": self._repr_svg_(), "text/plain": repr(self)}
        page = self._repr_html_()
        if page is not None:
            bundle["text/html"] = page
        return bundle
