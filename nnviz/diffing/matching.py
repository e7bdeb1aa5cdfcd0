"""Which module and node of an old graph is which of a new one: the first half of a diff.

`match(old, new)` pairs module paths and node ids by running `PASSES` in order, each linear in
the graph size (times the module depth), so that a renamed or moved module is found as one, not
as an unrelated removal plus addition:

1. shifted children: where the children of a numbered container (a Sequential, a ModuleList)
   present on both sides no longer record the same modules index by index (an insert or a
   removal shifted every later index), they pair by aligning their structural digests, so the
   same layer is found moved, not every later one changed into its neighbour;
2. by id: the same module path with the same class, the same node id with the same op (not a
   function or method call: its id is a counter in its scope);
3. subtrees by structure: a still unmatched module subtree whose structural digest (classes,
   hyperparameters, parameter shapes, and the ops and wiring inside, but no names) equals one of
   the other side's is the same subtree, renamed or moved; its descendants pair up in order.
   Leaves are generic (one ReLU is like any other), so a leaf pairs this way only among the
   siblings of its counterpart, or when it has parameters and its digest is unique on both sides;
4. modules by path: what module is left at the same path is the same module, changed;
5. containers bottom-up: as GumTree does for syntax trees, an unmatched container is the old
   container of the same class holding most of its already-matched descendants (unmatched ones
   with a same-class twin at the same relative path count too), if the share is over half; then
   its descendants pair up by relative name;
6. calls of matched modules: a matched module's calls pair in order;
7. inlined calls: a module call on one side and the ops of its scope on the other (the class
   changed, so one side traces through it), both ways;
8. calls by op and producers: within paired scopes, calls aligned by op and matched inputs;
9. leftover calls by op: what is left in a paired scope, by op in order;
10. other nodes by id: inputs, outputs and module calls left at the same id, unless their module
    was paired elsewhere;
11. calls by position: an unmatched function or method call fed by exactly the counterparts of
    another's inputs, in the same scope, is that call with a different op (`torch.relu` ->
    `torch.sigmoid`).

Everything is deterministic: candidates are always visited in graph order.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from nnviz.diffing.ops import op_of, same_op
from nnviz.diffing.sides import FLOW_OPS, Candidates, Side, aligned, home, leaf_name, stem, unpaired
from nnviz.graph import Graph, Module, parent_path


@dataclass
class Matching:
    """The pairs found: old module path -> new path, old node id -> new id."""

    modules: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    modules_back: dict[str, str] = field(default_factory=dict)
    nodes_back: dict[str, str] = field(default_factory=dict)
    inputs: tuple[dict[str, dict[str, str]], ...] = field(default=(), compare=False, repr=False)
    scalars: tuple[frozenset[str], ...] = field(default=(), compare=False, repr=False)
    """Indexes `match` built of both graphs (old, new), which `build` reuses (empty for a matching
    made otherwise): the source feeding each argument slot of every node; `scalar_nodes`."""

    def pair_modules(self, old: str, new: str) -> bool:
        if old in self.modules or new in self.modules_back:
            return False
        self.modules[old] = new
        self.modules_back[new] = old
        return True

    def pair_nodes(self, old: str, new: str) -> bool:
        if old in self.nodes or new in self.nodes_back:
            return False
        self.nodes[old] = new
        self.nodes_back[new] = old
        return True


def match(old: Graph, new: Graph) -> Matching:
    """Pair up the modules and nodes of `old` and `new`: `PASSES` in turn (module docstring)."""
    a, b = Side(old), Side(new)
    m = Matching(inputs=(a.inputs, b.inputs), scalars=(a.scalars, b.scalars))
    for one in PASSES:
        one.run(m, a, b)
    return m


def _by_id(m: Matching, a: Side, b: Side) -> None:
    modules, modules_back, nodes, nodes_back = m.modules, m.modules_back, m.nodes, m.nodes_back
    for path, module in a.modules.items():  # `pair_modules` inlined (100,000 calls at size)
        other = b.modules.get(path)
        if other is None or other.cls != module.cls or path in modules or path in modules_back:
            continue
        modules[path] = modules_back[path] = path
    for node in a.nodes:
        twin = None if node.kind in FLOW_OPS else b.by_id.get(node.id)
        if twin is None or node.id in nodes or node.id in nodes_back:
            continue
        if (node.kind != "module" or node.module in modules) and same_op(node, twin):
            nodes[node.id] = nodes_back[node.id] = node.id


def _shifted_children(m: Matching, a: Side, b: Side) -> None:
    containers, children = a.sizes, a.graph.children  # (`sizes` holds the modules with children)
    for path in filter(containers.__contains__, a.modules):  # (leaves have nothing to align)
        module, olds = a.modules[path], children(path)
        if not leaf_name(olds[0].path).isdigit():
            continue  # not numbered (most containers; tested first: cheaper than the records)
        other = b.modules.get(path)
        if other is None or other.cls != module.cls:
            continue
        if m.modules.get(path, path) == path and m.modules_back.get(path, path) == path:
            _align_children(m, a, b, olds, b.graph.children(path))  # (not inside a moved layer)


def _align_children(
    m: Matching, a: Side, b: Side, before: list[Module], after: list[Module]
) -> None:
    """Children of a numbered container that no longer line up (an insert or a removal shifted
    every later index) pair by aligning their digests (`sides.aligned`) when that finds more
    layers alike than each index with itself does, and over half of them: the same layers,
    moved; between two such pairs, runs of equal length pair by class (changed in their new
    places). By id pairs only what is left."""
    olds, news = [c.path for c in before], [c.path for c in after]
    if not all(leaf_name(p).isdigit() for p in (*olds, *news)):
        return
    if len(before) == len(after) and sum(p != q for p, q in zip(before, after, strict=True)) < 2:
        return  # the same modules, or one edited in place: no digest computed
    classes = [c.cls for c in before], [c.cls for c in after]
    keys = [a.digest(p) for p in olds], [b.digest(q) for q in news]
    pairs = aligned(*keys)
    in_place = sum(1 for p, q in zip(*keys, strict=False) if p == q)
    if all(i == j for i, j in pairs) or len(pairs) <= in_place:
        return  # edits in place, nothing shifted: by id pairs each index as before
    if 2 * len(pairs) <= min(len(olds), len(news)):
        return  # too few alike to say the rest shifted (each stage widened in place)
    for i, j in pairs:
        _pair_subtree(m, a, b, olds[i], news[j])
    bounds = [(-1, -1), *pairs, (len(olds), len(news))]
    for (i, j), (i_next, j_next) in itertools.pairwise(bounds):
        if i_next - i != j_next - j or i == j:
            continue  # a run left at its own indices is by id's
        for k in range(1, i_next - i):
            p, q = olds[i + k], news[j + k]
            if classes[0][i + k] == classes[1][j + k] and m.pair_modules(p, q):
                _pair_by_relative_name(m, a, b, p, q)


def _modules_by_path(m: Matching, a: Side, b: Side) -> None:
    for path in unpaired(a.modules, m.modules):
        if path in b.modules and path not in m.modules_back:
            m.pair_modules(path, path)


def _inlined(m: Matching, a: Side, b: Side) -> None:
    _pair_inlined(m, a, b)
    _pair_inlined(_Mirror(m), b, a)


def _nodes_by_id(m: Matching, a: Side, b: Side) -> None:
    for node_id in unpaired(a.by_id, m.nodes):
        twin = b.by_id.get(node_id)
        if twin is None or node_id in m.nodes_back:
            continue
        node = a.by_id[node_id]
        if node.kind in FLOW_OPS or twin.kind in FLOW_OPS:
            continue
        kinds = {node.kind, twin.kind}
        if len(kinds) > 1 and kinds & {"input", "output"}:
            continue
        paired_elsewhere = node.module in m.modules and m.modules[node.module] != twin.module
        if not (node.module is not None and paired_elsewhere):
            m.pair_nodes(node.id, node.id)


def _match_subtrees(m: Matching, a: Side, b: Side) -> None:
    """Containers pair with an equal digest anywhere. A leaf (a ReLU is like any other ReLU) only
    pairs beside its counterpart's siblings, or when it holds parameters and its digest is unique
    among the unmatched modules of both sides; else it is left to the later passes. Among several
    candidates the one with the same name under the counterpart of the same parent wins, then the
    same name, then the same parent, then the first in tree order."""
    candidates, taken = Candidates(), m.modules  # taken: the old modules paired so far
    for path in unpaired(a.modules, m.modules):
        if path:
            candidates.add(a.digest(path), path)
    if not candidates.pools:
        return
    leaves: list[str] = []
    for path in unpaired(b.modules, m.modules_back):
        if not path:
            continue
        if not b.graph.children(path):
            leaves.append(path)
            continue
        d, name, up = b.digest(path), leaf_name(path), _old_parent(m, path)
        old = (
            (candidates.first(taken, d, name, up) if up is not None else None)
            or candidates.first(taken, d, "n", name)
            or (candidates.first(taken, d, "p", up) if up is not None else None)
            or candidates.first(taken, d)
        )
        if old is not None:
            _pair_subtree(m, a, b, old, path)
    new_counts: dict[str, int] = {}
    for path in leaves:
        if path not in m.modules_back:
            new_counts[b.digest(path)] = new_counts.get(b.digest(path), 0) + 1
    for path in leaves:
        if path in m.modules_back:
            continue
        d, name, up = b.digest(path), leaf_name(path), _old_parent(m, path)
        sibling = None
        if up is not None:
            sibling = candidates.first(taken, d, name, up) or candidates.first(taken, d, "p", up)
        if sibling is not None:
            _pair_subtree(m, a, b, sibling, path)
        elif (
            new_counts[d] == 1
            and b.graph.modules[path].parameters
            and candidates.count(taken, d, 2) == 1
        ):
            only = candidates.first(taken, d)
            assert only is not None
            _pair_subtree(m, a, b, only, path)


def _old_parent(m: Matching, path: str) -> str | None:
    """The old path paired with `path`'s parent, None while that parent is unmatched."""
    return m.modules_back.get(parent_path(path) or "")


def _pair_subtree(m: Matching, a: Side, b: Side, old: str, new: str) -> None:
    """Pair two subtrees with equal digests: modules in tree order, nodes in trace order."""
    olds, news = list(a.subtree(old)), list(b.subtree(new))
    for p, q in zip(olds, news, strict=False):
        m.pair_modules(p, q)
    for i, j in zip(a.subtree_nodes(olds), b.subtree_nodes(news), strict=False):
        m.pair_nodes(i, j)


def _match_containers(m: Matching, a: Side, b: Side) -> None:
    old, new = a.graph, b.graph
    for path in unpaired(reversed(list(new.modules)), m.modules_back):
        if not path or not new.children(path):
            continue
        sizes, rank = a.sizes, a.rank
        descendants = list(b.subtree(path))[1:]
        votes: dict[str, int] = {}
        for d in descendants:
            counterpart = m.modules_back.get(d)
            ancestor = parent_path(counterpart) if counterpart is not None else None
            while ancestor:
                votes[ancestor] = votes.get(ancestor, 0) + 1
                ancestor = parent_path(ancestor)
        best, best_score = None, 0.5
        for candidate in sorted(votes, key=rank.__getitem__):
            if candidate in m.modules or old.modules[candidate].cls != new.modules[path].cls:
                continue
            # unmatched descendants that would pair by relative name count as agreeing too
            agree = votes[candidate] + sum(
                1
                for d in descendants
                if d not in m.modules_back and _twin(m, a, b, candidate, path, d)
            )
            score = 2 * agree / (sizes.get(candidate, 0) + len(descendants))
            if score > best_score:
                best, best_score = candidate, score
        if best is not None:
            m.pair_modules(best, path)
            _pair_by_relative_name(m, a, b, best, path)


def _twin(m: Matching, a: Side, b: Side, old: str, new: str, descendant: str) -> bool:
    """Whether old container `old` has an unmatched module of the same class where `new` has
    `descendant`."""
    twin = _relocate(descendant, new, old)
    module = a.graph.modules.get(twin)
    return (
        module is not None
        and twin not in m.modules
        and module.cls == b.graph.modules[descendant].cls
    )


def _relocate(path: str, base: str, other: str) -> str:
    """`base.x.y` -> `other.x.y`."""
    rest = path[len(base) + 1 :] if base else path
    return f"{other}.{rest}" if other else rest


def _pair_by_relative_name(m: Matching, a: Side, b: Side, old: str, new: str) -> None:
    for q in list(b.subtree(new))[1:]:
        p = _relocate(q, new, old)
        if p in a.graph.modules and q not in m.modules_back:
            m.pair_modules(p, q)


def _follow_modules(m: Matching, a: Side, b: Side) -> None:
    """Calls of paired modules pair in call order; ops in a renamed scope pair by relative id."""
    old_calls, new_calls, nodes, nodes_back = a.calls, b.calls, m.nodes, m.nodes_back
    calls = itertools.chain.from_iterable(old_calls.values())
    pending = {a.by_id[i].module for i in calls if i not in nodes}  # by id paired most calls
    for p, q in m.modules.items():  # `pair_nodes` inlined below
        if p in pending and q in new_calls:
            for i, j in zip(old_calls[p], new_calls[q], strict=False):
                if i not in nodes and j not in nodes_back:
                    nodes[i], nodes_back[j] = j, i


class _Mirror(Matching):
    """A view of a matching with the sides swapped (pairs written through to the original)."""

    def __init__(self, m: Matching) -> None:
        super().__init__(m.modules_back, m.nodes_back, m.modules, m.nodes)


def _pair_inlined(m: Matching, a: Side, b: Side) -> None:
    """A module called as one node on the old side and traced through on the new (a library's
    own subclass of a `torch.nn` layer) pairs its call with the functional it stands for inside
    (`BatchNorm2d` with `batch_norm`, `LayerNorm` with `layer_norm`, whatever the subclass calls
    after it), else with the call whose output leaves its scope, so its readers stay wired to
    the same thing."""
    old_calls, new_calls, nodes, modules = a.calls, b.calls, m.nodes, m.modules
    waiting = {p for p, calls in old_calls.items() if calls[0] not in nodes and p in modules}
    if all(modules[p] in new_calls for p in waiting):
        return  # the usual case: every paired module's call is paired (or both sides call it)
    for p, q in list(modules.items()):
        if p not in waiting or q in new_calls:
            continue
        calls = old_calls[p]  # its first call is still unpaired: only this pass pairs it
        inside = list(b.subtree(q))
        within = set(inside)
        named = stem(a.graph.modules[p].cls)
        exit_node, same = None, None
        for n in b.subtree_nodes(inside):
            node = b.by_id[n]
            if node.kind not in FLOW_OPS:
                continue
            if same is None and stem(node.op) == named:
                same = n
            if any(home(b.by_id[t]) not in within for t in b.graph.successors(n)):
                exit_node = n
        pick = same if same is not None else exit_node
        if pick is not None and pick not in m.nodes_back:
            m.pair_nodes(calls[0], pick)


def _old_scope(m: Matching, a: Side, b: Side, scope: str) -> str | None:
    """The old counterpart of a new scope: its paired module, or the same path when neither side
    has a module there (a snapshot may hold scopes without modules: they compare by path)."""
    if scope in m.modules_back:
        return m.modules_back[scope]
    if scope in b.graph.modules or scope in a.graph.modules:
        return None
    return scope


def _align_calls(m: Matching, a: Side, b: Side) -> None:
    """Function and method calls pair by what they are and where their data comes from, never
    by the counter in their ids: in new trace order (producers first), a call takes the
    unmatched old call of the same op, in the counterpart of its scope, that reads the most of
    its inputs' counterparts in the same argument slots; equal constants break ties, then old
    trace order. One inserted call thus leaves its neighbours' pairs alone."""
    nodes, nodes_back, successors = m.nodes, m.nodes_back, a.graph.successors
    old_ids, old_inputs, new_inputs, old_scalars = a.by_id, a.inputs, b.inputs, a.scalars
    for node in map(b.by_id.__getitem__, unpaired(b.flow, nodes_back)):
        scope = _old_scope(m, a, b, node.scope)
        if scope is None:
            continue
        wanted = {}
        for slot, src in new_inputs.get(node.id, {}).items():
            if src in nodes_back:
                wanted[slot] = nodes_back[src]
        best, best_score, scalar, seen = None, (0, False, 0), node.id in b.scalars, set()
        for src in dict.fromkeys(wanted.values()):
            for cand in successors(src):
                if cand in nodes or cand in seen or (cand in old_scalars) != scalar:
                    continue  # (a scalar read is no tensor op; a candidate seen scores the same)
                seen.add(cand)
                other = old_ids[cand]
                if other.scope != scope or not same_op(other, node):
                    continue
                slots = old_inputs.get(cand, {})
                agree = sum(slots.get(slot) == s for slot, s in wanted.items())
                score = (agree, other.args == node.args, -a.order[cand])
                if score > best_score:
                    best, best_score = cand, score
        if best is not None:
            m.pair_nodes(best, node.id)


def _align_leftovers(m: Matching, a: Side, b: Side) -> None:
    """Calls still unpaired in a pair of scopes (their producers changed too) pair by op along
    the longest common subsequence of the two scopes' remaining calls."""
    for q, new_ids in b.scoped.items():
        news = [j for j in new_ids if j not in m.nodes_back]
        p = _old_scope(m, a, b, q) if news else None
        if p is None:
            continue
        olds = [i for i in a.scoped.get(p, ()) if i not in m.nodes]
        if not olds:
            continue
        ops_a = [(op_of(a.by_id[i]), i in a.scalars) for i in olds]
        ops_b = [(op_of(b.by_id[j]), j in b.scalars) for j in news]
        blocks = difflib.SequenceMatcher(None, ops_a, ops_b, autojunk=False).get_matching_blocks()
        for block in blocks:
            for k in range(block.size):
                m.pair_nodes(olds[block.a + k], news[block.b + k])


def _match_by_inputs(m: Matching, a: Side, b: Side) -> None:
    """Calls fed by the same producers pair even when their op changed (`torch.relu` ->
    `torch.sigmoid`), but never a scalar read with a tensor op (`x.shape` with `x.transpose`)."""
    old, new = a.graph, b.graph
    old_scalars, new_scalars = a.scalars, b.scalars
    for node in map(b.by_id.__getitem__, unpaired(b.flow, m.nodes_back)):
        preds = new.predecessors(node.id)
        back = {m.nodes_back.get(p) for p in preds}
        if not preds or None in back:
            continue
        scope = m.modules_back.get(node.scope, node.scope)
        first = m.nodes_back[preds[0]]
        for cand in old.successors(first):
            other = a.by_id[cand]
            if (
                cand not in m.nodes
                and other.kind in FLOW_OPS
                and other.scope == scope
                and set(old.predecessors(cand)) == back
                and (cand in old_scalars) == (node.id in new_scalars)
            ):
                m.pair_nodes(cand, node.id)
                break


@dataclass(frozen=True)
class Pass:
    """One pass of `match`: its name (as the module docstring lists it) and what it runs."""

    name: str
    run: Callable[[Matching, Side, Side], None]


PASSES: tuple[Pass, ...] = (
    Pass("shifted children", _shifted_children),
    Pass("by id", _by_id),
    Pass("subtrees by structure", _match_subtrees),
    Pass("modules by path", _modules_by_path),
    Pass("containers bottom-up", _match_containers),
    Pass("calls of matched modules", _follow_modules),
    Pass("inlined calls", _inlined),
    Pass("calls by op and producers", _align_calls),
    Pass("leftover calls by op", _align_leftovers),
    Pass("other nodes by id", _nodes_by_id),
    Pass("calls by position", _match_by_inputs),
)
"""The passes of `match`, in order; the module docstring lists the same names (a test checks)."""
