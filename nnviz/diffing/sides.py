"""The indexes a matching reads (`nnviz.diffing.matching`): `Side`, what its passes need of one
graph (calls per module, ops per scope, the function and method calls and the trace order, each
node's input slots, the modules with children and their sizes, and the name-free structural
digest of a module subtree), and `Candidates`, the still unmatched old modules by digest (and by
digest with name and/or parent), so that choosing a counterpart never scans every module with the
same digest; `aligned`, the order-keeping alignment of two key sequences (the children of a
numbered container); `unpaired`, the keys a pass has left to pair, filtered at C speed.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from collections.abc import Container, Iterable, Iterator
from functools import cached_property

from nnviz.bookkeeping import scalar_nodes
from nnviz.diffing.ops import op_of
from nnviz.graph import Graph, Node, parent_path

FLOW_OPS = ("function", "method")
"""The node kinds that are calls of a function or method (their ids are counters in a scope)."""


class Side:
    """Indexes of one graph that the passes need: calls per module, nodes per scope, order."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.modules = graph.modules
        self.scalars = scalar_nodes(graph)  # a scalar read never pairs with a tensor op
        self.by_id = {node.id: node for node in self.nodes}  # dict lookups beat networkx views
        self.order = {node.id: i for i, node in enumerate(self.nodes)}
        self.inputs: dict[str, dict[str, str]] = {}
        for edge in graph.edges:
            slots = self.inputs.setdefault(edge.target, {})
            for slot in edge.slots:
                slots[slot] = edge.source
        self.calls: dict[str, list[str]] = {}
        self.scoped: dict[str, list[str]] = {}
        self.flow: list[str] = []  # the function and method calls, in trace order
        for node in self.nodes:
            if node.kind == "module" and node.module is not None:
                self.calls.setdefault(node.module, []).append(node.id)
            elif node.kind in FLOW_OPS:
                self.scoped.setdefault(node.scope, []).append(node.id)
                self.flow.append(node.id)
        self._digests: dict[str, str] = {}
        self._own_text: dict[str, str] = {}
        self._call_text: dict[str, str] = {}

    @cached_property
    def sizes(self) -> dict[str, int]:
        """How many modules lie below each module that has children (the keys are the modules
        with children, whatever their order)."""
        sizes: dict[str, int] = {}
        for p in reversed(list(self.modules)):  # children come after their parent
            if p:
                parent = p.rpartition(".")[0]  # `parent_path`, inlined
                sizes[parent] = sizes.get(parent, 0) + 1 + sizes.get(p, 0)
        return sizes

    @cached_property
    def rank(self) -> dict[str, int]:
        """Each module's position in tree order (built on first use: most matchings never ask)."""
        return {p: i for i, p in enumerate(self.modules)}

    def subtree(self, path: str) -> Iterator[str]:
        """Module paths of `path`'s subtree in tree order (pre-order)."""
        stack = [path]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed([m.path for m in self.graph.children(current)]))

    def subtree_nodes(self, modules: list[str]) -> list[str]:
        """Flow nodes that live in the given modules (calls and scoped ops), in trace order."""
        ids = [i for m in modules for i in (*self.calls.get(m, ()), *self.scoped.get(m, ()))]
        return sorted(ids, key=self.order.__getitem__)

    def digest(self, path: str) -> str:
        """A name-free structural fingerprint of the module subtree at `path`."""
        cached = self._digests.get(path)
        if cached is not None:
            return cached
        modules = list(self.subtree(path))
        local = {m: i for i, m in enumerate(modules)}
        nodes = self.subtree_nodes(modules)
        position = {n: i for i, n in enumerate(nodes)}
        parts: list[str] = []
        for m in modules:
            parent = parent_path(m)
            parts.append(f"{local.get(parent, -1) if parent is not None else -1}|{self._own(m)}")
        for n in nodes:
            node = self.by_id[n]
            inputs = sorted(
                (slot, position.get(edge.source, -1))
                for edge in self.graph.in_edges(n)
                for slot in edge.slots
            )
            where = local.get(node.module or "", -1) if node.kind == "module" else ""
            parts.append(f"{where}|{self._call(n)}|{inputs}")
        value = hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
        self._digests[path] = value
        return value

    def _own(self, path: str) -> str:
        """A module's class, hyperparameters and parameter shapes (computed once per module:
        every ancestor's digest repeats it)."""
        text = self._own_text.get(path)
        if text is None:
            mod = self.graph.modules[path]
            shapes = sorted((k, list(v)) for k, v in mod.parameters.items())
            text = canonical([mod.cls, dict(mod.hparams), shapes])
            self._own_text[path] = text
        return text

    def _call(self, node_id: str) -> str:
        """A node's kind, op (not for module calls: the module says it) and constants."""
        text = self._call_text.get(node_id)
        if text is None:
            node = self.by_id[node_id]
            op = "" if node.kind == "module" else op_of(node)  # `F.relu` is `x.relu()`
            text = canonical([op, dict(node.args)])
            self._call_text[node_id] = text
        return text


def unpaired(keys: Iterable[str], paired: Container[str]) -> Iterator[str]:
    """`keys` not in `paired`, in order, filtered at C speed (a pass's loop over 100,000 keys
    then runs only for the few left); each is tested when reached, as the loop's own test
    would be, so pairs the loop makes count for the keys after."""
    return itertools.filterfalse(paired.__contains__, keys)


def leaf_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def stem(name: str) -> str:
    """`torch.nn.BatchNorm2d`, `torch.nn.functional.batch_norm` -> `batchnorm`: a layer class and
    its functional form read alike."""
    last = name.rsplit(".", 1)[-1].lower().replace("_", "")
    return last[:-2] if last[-2:-1].isdigit() and last.endswith("d") else last


def home(node: Node) -> str:
    """The module a node lives in: its own path for a module call, else its scope."""
    return node.module if node.kind == "module" and node.module is not None else node.scope


def canonical(value: object) -> str:
    """`value` as one comparable text (sorted keys, no spaces; what JSON cannot say, as `str`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class _Pool:
    """Old candidate paths in tree order; matched ones at the front are dropped once."""

    __slots__ = ("items", "start")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.start = 0

    def live(self, matched: Container[str], limit: int = 1) -> list[str]:
        """Up to `limit` unmatched candidates, in order."""
        while self.start < len(self.items) and self.items[self.start] in matched:
            self.start += 1
        out: list[str] = []
        i = self.start
        while i < len(self.items) and len(out) < limit:
            if self.items[i] not in matched:
                out.append(self.items[i])
            i += 1
        return out


class Candidates:
    """Unmatched old modules by digest, and by digest with name and/or parent, so that choosing
    a counterpart never scans every module with the same digest."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, ...], _Pool] = {}

    def add(self, digest: str, path: str) -> None:
        name, parent = leaf_name(path), parent_path(path) or ""
        for key in ((digest,), (digest, "n", name), (digest, "p", parent), (digest, name, parent)):
            self.pools.setdefault(key, _Pool()).items.append(path)

    def first(self, matched: Container[str], *key: str) -> str | None:
        """The first candidate under `key` not in `matched` (the old modules paired so far)."""
        pool = self.pools.get(key)
        found = pool.live(matched) if pool is not None else []
        return found[0] if found else None

    def count(self, matched: Container[str], digest: str, limit: int) -> int:
        """How many candidates with `digest` are not in `matched`, counting up to `limit`."""
        pool = self.pools.get((digest,))
        return len(pool.live(matched, limit)) if pool is not None else 0


def aligned(old: list[str], new: list[str]) -> list[tuple[int, int]]:
    """Index pairs of equal keys in order: the common head and tail first (an edit in place
    pairs every other index with itself, however alike the keys), then difflib's matching
    blocks (no junk heuristic) between them, each inserted or removed run slid as far down as
    equal keys allow, as a text diff does: one `conv, relu` added after `conv, relu` is the
    second pair, not `relu, conv` in between."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(
        None, old[head : len(old) - tail], new[head : len(new) - tail], autojunk=False
    )
    forward = {k: k for k in range(head)}
    forward |= {len(new) - 1 - k: len(old) - 1 - k for k in range(tail)}
    for i, j, size in middle.get_matching_blocks():
        forward |= {head + j + k: head + i + k for k in range(size)}
    _slide(forward, new)
    backward = {i: j for j, i in forward.items()}
    _slide(backward, old)
    return sorted(backward.items())


def _slide(pairs: dict[int, int], keys: list[str]) -> None:
    """Move each run of `keys` left unpaired by a pure insert (its neighbours' partners are
    adjacent: not a replacement) down while its first key equals the key after it (that key's
    partner pairs with the run's first instead)."""
    j = 0
    while j < len(keys):
        end = j
        while end < len(keys) and end not in pairs:
            end += 1
        pure = end < len(keys) and pairs[end] == (pairs[j - 1] + 1 if j else 0)
        while pure and j < end < len(keys) and keys[j] == keys[end]:
            pairs[j] = pairs.pop(end)
            j, end = j + 1, end + 1
            while end < len(keys) and end not in pairs:
                end += 1
        j = end + 1
