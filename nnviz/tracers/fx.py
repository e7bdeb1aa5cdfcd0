"""The torch.fx tracer: a symbolic trace of a module into a `Graph`.

Built-in `torch.nn` modules are leaves (and an empty `Sequential`: a no-op that is called); user
modules are traced through, and every node records
the module scope it was created in, so the hierarchy survives inlining. Reads of a module's own
parameters and buffers (`get_attr`) become `$attr` constants of the op that reads them, and
internal shape asserts are dropped together with the shape queries that only fed them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.errors import TraceError
from nnviz.graph import Edge, Graph, Node, Source, parent_path
from nnviz.tracers.binding import bind
from nnviz.tracers.conventions import (
    IdAllocator,
    call_name,
    encode,
    holds_ref,
    input_default,
    is_shape_query,
    module_names,
    module_tree,
    nested_parts,
    qualname,
    scoped,
    versions,
)
from nnviz.tracers.lines import Where
from nnviz.tracers.pristine import check_inputs, preserved, static_forward
from nnviz.values import Value

ASSERTS = {torch._assert}
for _name in ("_assert_async", "_check", "_check_is_size"):
    if hasattr(torch, _name):
        ASSERTS.add(getattr(torch, _name))

_SCOPE = "nnviz_scope"
_SOURCE = "nnviz_source"
_CALLS = ("call_module", "call_function", "call_method")
_FX_RULE = fx.Tracer()


def is_leaf(module: nn.Module, path: str) -> bool:
    """A module recorded as one call: fx's rule (built-in `torch.nn` modules but `Sequential`)
    and an empty `Sequential`, which is the identity that gets called (timm 0.6's no-op
    activation) rather than a container: traced through, it would vanish from the graph."""
    empty = isinstance(module, nn.Sequential) and len(module) == 0
    return empty or _FX_RULE.is_leaf_module(module, path)


class _ScopeTracer(fx.Tracer):
    """An fx tracer that remembers in which module scope each node was created."""

    def __init__(self) -> None:
        super().__init__()
        self._scopes: list[str] = [""]
        self.failing_module: str | None = None
        self._names: dict[int, tuple[str, ...]] | None = None  # every name of each module
        self._entering: tuple[nn.Module, str] | None = None  # the module call being entered
        self.where: Where | None = None
        """Where a call is written (set by the function that traces the model)."""
        self.constants: dict[str, torch.Tensor] = {}
        """Tensors forward() made without an input (`torch.eye(4)`), by fx's attribute name."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m, module_qualified_name)

    def create_arg(self, a: Any) -> Any:
        # fx stores such a tensor as a `_tensor_constant<N>` attribute of the root; keep it here
        # instead, to record it by what it is (its attribute is removed with the rest of the
        # trace's traces on the model, and its number depends on what the model held before)
        known = not isinstance(a, torch.Tensor) or a in self.tensor_attrs
        arg = super().create_arg(a)
        if not known and a in self.tensor_attrs and isinstance(arg, fx.Node):
            self.constants[str(arg.target)] = a
        return arg

    def path_of_module(self, mod: nn.Module) -> str:
        if self._entering is not None and self._entering[0] is mod:
            return self._entering[1]  # asked again by fx's call_module, inside the new scope
        if self._names is None:
            self._names = module_names(self.root)
        names = self._names.get(id(mod))
        return call_name(names, self._scopes[-1]) if names else super().path_of_module(mod)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        path = self.path_of_module(m)
        self._entering = (m, path)
        self._scopes.append(path)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failing_module is None:
                self.failing_module = path
            raise
        finally:
            self._scopes.pop()

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta[_SCOPE] = self._scopes[-1]
        if self.where is not None and node.op in _CALLS:
            node.meta[_SOURCE] = self.where()
        return node


@dataclasses.dataclass(frozen=True)
class FxTrace:
    """A symbolic trace: the graph, the raw fx graph, the map from fx nodes to graph node ids
    (shape propagation runs the fx graph and writes the specs back by id) and the tensor
    constants the fx graph reads by name."""

    graph: Graph
    fx_graph: fx.Graph
    ids: dict[fx.Node, str]
    constants: dict[str, torch.Tensor]


def trace_fx(model: nn.Module, name: str) -> FxTrace:
    """Trace `model` symbolically; the model is left as it was (see `pristine.preserved`).

    A `@staticmethod` forward is traced as the plain function it is (fx would pass the module as
    its first argument); a graph whose inputs are not forward's arguments raises `TraceError`.
    """
    tracer = _ScopeTracer()
    root: Any = type(model).forward if static_forward(model) else model
    tracer.where = Where()
    try:
        with preserved(model):
            fx_graph = tracer.trace(root)
    except Exception as exc:
        where = f" in module {tracer.failing_module!r}" if tracer.failing_module else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # fx's own words name the symptom (`... not 'Proxy'`); the cause is data-dependent code.
        # The caller adds what to do instead: it knows the tracer asked for and the inputs.
        cause = (
            " (forward() uses a traced tensor as Python data: a number, a loop, an index)"
            if "Proxy" in first or "symbolically traced variables" in first
            else ""
        )
        raise TraceError(f"torch.fx cannot trace {name}{where}: {first[:160]}{cause}") from exc
    graph, ids = _convert(model, name, fx_graph, tracer.constants)
    check_inputs(graph, model.forward, name)
    return FxTrace(graph, fx_graph, ids, tracer.constants)


def _convert(
    model: nn.Module, name: str, fx_graph: fx.Graph, tensors: dict[str, torch.Tensor]
) -> tuple[Graph, dict[fx.Node, str]]:
    dropped = _dropped_nodes(fx_graph)
    allocate = IdAllocator()
    ids: dict[fx.Node, str] = {}
    attrs: dict[fx.Node, Value] = {}
    nodes: list[Node] = []
    edges: dict[tuple[str, str], list[str]] = {}
    sources: dict[str, Source] = {}

    for fn in fx_graph.nodes:
        if fn in dropped:
            continue
        if fn.op == "get_attr":
            target = str(fn.target)
            attrs[fn] = encode(tensors[target]) if target in tensors else {"$attr": target}
            continue
        node_id, node = _make_node(fn, model, allocate)
        ids[fn] = node_id
        if fn.meta.get(_SOURCE) is not None:
            sources[node_id] = fn.meta[_SOURCE]
        constants: dict[str, Value] = {}
        if fn.op == "placeholder":
            constants = {k: encode(v) for k, v in input_default(model, node["op"])}

        def is_ref(value: Any) -> bool:
            return isinstance(value, fx.Node) and value not in attrs

        for slot, value in _bound_slots(fn, model, is_ref):
            for sub, part in nested_parts(value, slot, is_ref):
                if is_ref(part):
                    if part in ids:
                        edges.setdefault((ids[part], node_id), []).append(sub)
                elif sub == slot or fn.op != "output":
                    constants[sub] = _constant(part, attrs)
        nodes.append(Node(**{**node, "args": constants}))
    graph = Graph(
        nodes,
        [Edge(s, t, tuple(slots)) for (s, t), slots in edges.items()],
        module_tree(model),
        {"name": name, "tracer": "fx", "versions": versions(), "inputs": None},
        sources=sources,
    )
    return graph, ids


def _make_node(fn: fx.Node, model: nn.Module, allocate: IdAllocator) -> tuple[str, dict[str, Any]]:
    scope: str = fn.meta.get(_SCOPE, "")
    if fn.op == "placeholder":
        arg = str(fn.target).lstrip("*")
        node_id = allocate(f"input:{arg}")
        return node_id, {"id": node_id, "kind": "input", "op": arg}
    if fn.op == "output":
        node_id = allocate("output")
        return node_id, {"id": node_id, "kind": "output", "op": "output"}
    if fn.op == "call_module":
        path = str(fn.target)
        node_id = allocate(path)
        op = qualname(type(model.get_submodule(path)))
        return node_id, {
            "id": node_id,
            "kind": "module",
            "op": op,
            "scope": parent_path(path) or "",
            "module": path,
        }
    if fn.op == "call_function":
        op = qualname(fn.target)
        node_id = allocate(scoped(scope, op.rsplit(".", 1)[-1]))
        return node_id, {"id": node_id, "kind": "function", "op": op, "scope": scope}
    method = str(fn.target)
    node_id = allocate(scoped(scope, method))
    return node_id, {"id": node_id, "kind": "method", "op": method, "scope": scope}


def _bound_slots(
    fn: fx.Node, model: nn.Module, is_ref: Callable[[Any], bool]
) -> list[tuple[str, Any]]:
    """The call's arguments by the callee's parameter names (`nnviz.tracers.binding`)."""
    if fn.op in ("placeholder", "get_attr"):
        return []
    slots = [(str(i), arg) for i, arg in enumerate(fn.args)] + list(fn.kwargs.items())
    if fn.op == "output":
        return slots
    target: Any
    if fn.op == "call_module":
        kind, target = "module", model.get_submodule(str(fn.target))
    elif fn.op == "call_method":
        kind, target = "method", str(fn.target)
    else:
        kind, target = "function", fn.target
    return bind(kind, target, slots, lambda value: not holds_ref(value, is_ref))


def _constant(value: Any, attrs: dict[fx.Node, Value]) -> Value:
    if isinstance(value, fx.Node):
        return attrs[value]
    if isinstance(value, (tuple, list)) and any(isinstance(v, fx.Node) for v in value):
        items = [_constant(v, attrs) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    return encode(value)


def _dropped_nodes(fx_graph: fx.Graph) -> set[fx.Node]:
    """Asserts, the function/method nodes whose results then feed nothing, and unused shape
    queries (`n, c, h, w = x.shape` with `c` unused; a shape formatted into an assert message)."""
    dropped = {n for n in fx_graph.nodes if n.op == "call_function" and n.target in ASSERTS}
    changed = True
    while changed:
        changed = False
        for n in reversed(list(fx_graph.nodes)):
            if n in dropped or n.op not in ("call_function", "call_method", "get_attr"):
                continue
            if (n.users and all(u in dropped for u in n.users)) or (
                not n.users and _is_shape_query(n)
            ):
                dropped.add(n)
                changed = True
    return dropped


def _is_shape_query(n: fx.Node) -> bool:
    """A side-effect-free read (of a shape, an item of it): dropping it when unused loses nothing.
    Other unused calls stay, since they may act in place."""
    if n.op == "call_function":
        return is_shape_query("function", qualname(n.target))
    return n.op == "call_method" and is_shape_query("method", str(n.target))
