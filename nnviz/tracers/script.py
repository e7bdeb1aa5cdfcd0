"""TorchScript modules (`torch.jit.trace` / `torch.jit.script`): drawn from their TorchScript graph.

Neither torch.fx nor a recorded forward pass can see inside a ScriptModule (its forward runs in
the TorchScript interpreter), but the module carries its graph. It is read method by method:
a call of a submodule whose class is a built-in `torch.nn` module is one module node (a leaf,
as in the other tracers); other submodules are read recursively as their own scope, so the
hierarchy is the module's (`named_modules`, classes by `original_name`). `aten::` ops become
function nodes (`torch.relu`), constants become arguments, reads of parameters and buffers
`$attr` values; control flow (`prim::If`, `prim::Loop`) is one node each.

TorchScript runs no Python that could be recorded, so no shapes are recorded: with an example
input, a `DataTraceWarning` says so.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import torch
from torch import nn

from nnviz.errors import DataTraceWarning, TraceError
from nnviz.graph import Edge, Graph, Module, Node, parent_path
from nnviz.tracers.conventions import (
    IdAllocator,
    encode,
    first_names,
    hparams,
    scoped,
    state_contract,
    versions,
)
from nnviz.values import Value

_SKIPPED = {"prim::Constant", "prim::GetAttr", "prim::ListConstruct", "prim::TupleConstruct"}


def trace_script(model: nn.Module, name: str, inputs: Any) -> Graph:
    """The graph of ScriptModule `model`, read from its TorchScript code."""
    try:
        graph = _method_graph(model, "forward")
    except Exception:  # a ScriptModule without a compiled forward
        raise TraceError(f"{name} is a TorchScript module without a forward graph") from None
    reader = _Reader(model)
    params = list(graph.inputs())
    reader.values[params[0].unique()] = ("module", "")
    for value in params[1:]:
        node_id = reader.add("input", _plain(value.debugName()), {})
        reader.values[value.unique()] = ("node", node_id)
    results = reader.read(graph, "")
    output = reader.add("output", "output", {})
    for slot, ref in reader.refs(results, "0"):
        reader.edge(ref, output, slot)
    if inputs is not None:
        warnings.warn(
            f"{name} is a TorchScript module: it is drawn from its TorchScript graph, without "
            "shapes (pass the Python module to record shapes)",
            DataTraceWarning,
            stacklevel=4,
        )
    meta: dict[str, Value] = {"name": name, "tracer": "torchscript", "versions": versions()}
    meta["inputs"] = None
    return Graph(
        reader.nodes,
        [Edge(s, t, tuple(slots)) for (s, t), slots in reader.edges.items()],
        _module_tree(model),
        meta,
    )


class _Reader:
    def __init__(self, model: nn.Module) -> None:
        self.modules = dict(model.named_modules())
        self.allocate = IdAllocator()
        self.nodes: list[Node] = []
        self.edges: dict[tuple[str, str], list[str]] = {}
        self.values: dict[int, tuple[str, Any]] = {}
        """TorchScript value -> ("node", id) | ("module", path) | ("attr", path) | ("const", v)."""

    def add(
        self, kind: Any, op: str, args: dict[str, Value], scope: str = "", module: str | None = None
    ) -> str:
        ends = {"input": f"input:{op}", "output": "output"}
        base = ends.get(kind) or module or scoped(scope, op.rsplit(".", 1)[-1])
        node_id = self.allocate(base)
        self.nodes.append(Node(id=node_id, kind=kind, op=op, scope=scope, module=module, args=args))
        return node_id

    def edge(self, source: str, target: str, slot: str) -> None:
        self.edges.setdefault((source, target), []).append(slot)

    def read(self, graph: Any, scope: str) -> Any:
        """Read `graph` (a method of the module at `scope`); return what it returns."""
        for node in graph.nodes():
            self.read_node(node, scope)
        (result,) = list(graph.return_node().inputs())
        return self.values.get(result.unique(), ("const", None))

    def read_node(self, node: Any, scope: str) -> None:
        kind = node.kind()
        outputs = list(node.outputs())
        inputs = [self.values.get(v.unique(), ("const", None)) for v in node.inputs()]
        if kind == "prim::Constant":
            self.values[outputs[0].unique()] = ("const", _constant(outputs[0]))
        elif kind == "prim::GetAttr":
            owner = inputs[0]
            path = scoped(owner[1], node.s("name")) if owner[0] == "module" else node.s("name")
            found = "module" if path in self.modules else "attr"
            self.values[outputs[0].unique()] = (found, path)
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            packed = tuple(inputs) if kind == "prim::TupleConstruct" else list(inputs)
            self.values[outputs[0].unique()] = ("pack", packed)
        elif kind == "prim::CallMethod" and inputs and inputs[0][0] == "module":
            self.call_method(node, inputs, outputs)
        else:
            op = _op(kind)
            self.record(op, inputs[1:] if kind == "prim::CallMethod" else inputs, outputs, scope)

    def call_method(self, node: Any, inputs: list[Any], outputs: list[Any]) -> None:
        path = inputs[0][1]
        module = self.modules[path]
        cls = _class_name(module)
        if _leaf(cls) and node.s("name") == "forward":  # a built-in torch.nn module: a leaf
            node_id = self.add("module", f"torch.nn.{cls}", {}, parent_path(path) or "", path)
            self.connect(node_id, inputs[1:])
            self.bind(outputs, node_id)
            return
        method = _method_graph(module, node.s("name"))
        params = list(method.inputs())
        # values are numbered per graph, and blocks of one class share their graph: a new frame
        callee = {params[0].unique(): ("module", path)}
        for param, value in zip(params[1:], inputs[1:], strict=False):
            callee[param.unique()] = value
        caller, self.values = self.values, callee
        try:
            result = self.read(method, path)
        finally:
            self.values = caller
        if outputs:
            self.values[outputs[0].unique()] = result

    def record(self, op: str, inputs: list[Any], outputs: list[Any], scope: str) -> None:
        node_id = self.add("function", op, {}, scope)
        args = self.connect(node_id, inputs)
        self.nodes[-1] = dataclasses.replace(self.nodes[-1], args=args)
        self.bind(outputs, node_id)

    def connect(self, node_id: str, inputs: list[Any]) -> dict[str, Value]:
        """Edges into `node_id` from its traced inputs; the other inputs as constant args."""
        args: dict[str, Value] = {}
        for i, value in enumerate(inputs):
            refs = list(self.refs(value, str(i)))
            for slot, ref in refs:
                self.edge(ref, node_id, slot)
            if not refs:
                args[str(i)] = self.constant(value)
        return args

    def bind(self, outputs: list[Any], node_id: str) -> None:
        for value in outputs:
            self.values[value.unique()] = ("node", node_id)

    def refs(self, value: tuple[str, Any], slot: str) -> Any:
        if value[0] == "node":
            yield slot, value[1]
        elif value[0] == "pack":
            for i, item in enumerate(value[1]):
                yield from self.refs(item, f"{slot}.{i}")

    def constant(self, value: tuple[str, Any]) -> Value:
        if value[0] == "attr":
            return {"$attr": value[1]}
        if value[0] == "module":
            return {"$attr": value[1]} if value[1] else {"$repr": "self"}
        if value[0] == "pack":
            items = [self.constant(v) for v in value[1]]
            return {"$tuple": items} if isinstance(value[1], tuple) else items
        return encode(value[1])


def _method_graph(module: nn.Module, method: str) -> Any:
    return module._c._get_method(method).graph  # type: ignore[union-attr,operator]


def _constant(value: Any) -> Any:
    try:
        return value.toIValue()
    except Exception:  # a constant TorchScript cannot hand to Python (a function, a class)
        return None


def _op(kind: str) -> str:
    namespace, _, name = kind.partition("::")
    if namespace == "aten" and name.endswith("_") and hasattr(torch, name[:-1]):
        name = name[:-1]  # `x += y` is aten::add_; fx records it as `+` too
    if namespace == "aten" and callable(getattr(torch, name, None)):
        return f"torch.{name}"
    return f"{namespace}.{name}"


def _plain(name: str) -> str:
    """`x.1` -> `x`: TorchScript numbers repeated names."""
    base, _, suffix = name.rpartition(".")
    return base if base and suffix.isdigit() else name


def _leaf(cls: str) -> bool:
    """fx's rule: built-in `torch.nn` modules are leaves, containers are not."""
    return hasattr(nn, cls) and cls not in ("Sequential", "ModuleList", "ModuleDict")


def _class_name(module: nn.Module) -> str:
    return str(getattr(module, "original_name", type(module).__name__))


def _module_tree(model: nn.Module) -> list[Module]:
    tree = []
    first = first_names(model)
    for path, module in model.named_modules():
        cls = _class_name(module)
        qualified = f"torch.nn.{cls}" if hasattr(nn, cls) else cls
        tree.append(
            Module(
                path=path,
                cls=qualified,
                params=sum(p.numel() for p in module.parameters()),
                hparams={} if isinstance(module, torch.jit.ScriptModule) else hparams(module)[0],
                **state_contract(module, path, first),
            )
        )
    return tree
