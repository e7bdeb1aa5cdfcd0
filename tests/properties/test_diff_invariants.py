"""Properties every diff keeps: a graph equals itself, swapping sides mirrors the statuses, the
document does not depend on where the graphs came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import traced

import nnviz
from nnviz.diffing.model import NodeDiff
from nnviz.graph import Edge, Graph, Module, Node

MIRROR = {"added": "removed", "removed": "added", "changed": "changed", "renamed": "renamed"}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "squeezenet1_0"])
def test_a_graph_equals_itself(name: str) -> None:
    graph = traced(name)
    result = nnviz.diff(graph, graph)
    assert result.identical and all(e.status == "unchanged" for e in result.entries)
    assert all(result.summary[s] == 0 for s in ("changed", "added", "removed", "renamed"))
    assert all(e.status == "unchanged" for e in result.edges)


@pytest.mark.parametrize(("a", "b"), [("resnet18", "resnet34"), ("resnet18", "resnet50")])
def test_swapping_sides_mirrors_the_statuses(a: str, b: str) -> None:
    forward = nnviz.diff(traced(a), traced(b))
    backward = nnviz.diff(traced(b), traced(a))
    there = {_sides(e): e.status for e in forward if e.status != "changed"}
    back = {_sides(e)[::-1]: MIRROR[e.status] for e in backward if e.status != "changed"}
    assert there == back
    assert {e.name for e in forward if e.status == "changed"} == {
        e.name for e in backward if e.status == "changed"
    }
    assert forward.summary["params"]["delta"] == -backward.summary["params"]["delta"]


def _sides(entry: NodeDiff) -> tuple[str | None, str | None]:
    """(name in old, name in new)."""
    return entry.old_name, None if entry.status == "removed" else entry.name


def test_the_document_does_not_depend_on_the_source(tmp_path: Path) -> None:
    a, b = traced("resnet18"), traced("resnet34")
    traced_doc = nnviz.diff(a, b).to_dict()
    loaded = nnviz.diff(nnviz.save(a, tmp_path / "a.json"), nnviz.save(b, tmp_path / "b.json"))
    assert loaded.to_dict() == traced_doc
    assert nnviz.diff(a, b).to_dict() == traced_doc  # deterministic


def _container_and_op(with_op: bool) -> Graph:
    """A container `x.add` and, optionally, the op `x.add`: one id for two things."""
    nodes = [
        Node("input:x", "input", "x"),
        Node("x.add.lin", "module", "torch.nn.Linear", "x.add", "x.add.lin"),
    ]
    edges = [Edge("input:x", "x.add.lin", ("0",))]
    last = "x.add.lin"
    if with_op:
        nodes.append(Node("x.add", "function", "operator.add", "x"))
        edges += [Edge("x.add.lin", "x.add", ("0",)), Edge("input:x", "x.add", ("1",))]
        last = "x.add"
    nodes.append(Node("output", "output", "output"))
    edges.append(Edge(last, "output", ("0",)))
    modules = [Module("", "m.M"), Module("x", "m.S"), Module("x.add", "m.S")]
    return Graph(nodes, edges, [*modules, Module("x.add.lin", "torch.nn.Linear")], {"name": "c"})


def test_an_op_and_a_container_with_one_id(tmp_path: Path) -> None:
    same = nnviz.diff(_container_and_op(True), _container_and_op(True))
    assert same.identical and {"x.add", "x.add#module"} <= {e.name for e in same.entries}
    gone = nnviz.diff(_container_and_op(True), _container_and_op(False))
    assert gone.to_text().splitlines()[0] == "- x.add#old  operator.add"
    assert nnviz.draw(gone, tmp_path / "d.svg").read_text().count("[removed]") == 1


def _flat(blocks: int, prefix: str) -> Graph:
    """`blocks` identical conv+relu blocks, at the top level or inside one container."""
    nodes, edges, modules = [Node("input:x", "input", "x")], [], [Module("", "t.Net")]
    if prefix:
        modules.append(Module(prefix.rstrip("."), "torch.nn.Sequential"))
    prev = "input:x"
    for i in range(blocks):
        p = f"{prefix}{i}"
        modules += [
            Module(p, "t.Block"),
            Module(
                f"{p}.conv", "torch.nn.Conv2d", 9, {"k": 3}, {"w": (3,)}, dtypes={"w": "float32"}
            ),
            Module(f"{p}.act", "torch.nn.ReLU"),
        ]
        nodes += [
            Node(f"{p}.conv", "module", "torch.nn.Conv2d", p, f"{p}.conv"),
            Node(f"{p}.act", "module", "torch.nn.ReLU", p, f"{p}.act"),
        ]
        edges += [Edge(prev, f"{p}.conv", ("0",)), Edge(f"{p}.conv", f"{p}.act", ("0",))]
        prev = f"{p}.act"
    nodes.append(Node("output", "output", "output"))
    edges.append(Edge(prev, "output", ("0",)))
    return Graph(nodes, edges, modules, {"name": "flat"})


@pytest.mark.parametrize("n", [30, 3000])  # 3000: heavy (tests/conftest.py)
def test_wrapping_thousands_of_identical_blocks_is_one_move_and_fast(n: int) -> None:
    import time

    old, new = _flat(n, ""), _flat(n, "wrap.")
    start = time.process_time()
    result = nnviz.diff(old, new)
    assert time.process_time() - start < 5  # 3000: ~0.6 s; a quadratic choice took 4 s
    assert result.to_text() == (
        f"+ wrap  Sequential ({2 * n} nodes, 0 params)\n"
        f"→ 0 … {n - 1} moved to wrap.0 … wrap.{n - 1} ({n} layers)\n"
        f"1 added, {n} renamed · params 0 → 0 (+0)\n"
        f"checkpoint: loads after renaming {n} keys\n"
    )


def test_metadata_never_counts() -> None:
    graph = traced("resnet18")
    other = graph.replace(
        nodes=[
            Node(n.id, n.kind, n.op, n.scope, n.module, n.args, n.spec, {"source": "x.py:1"})
            for n in graph.nodes
        ],
        meta={**graph.meta, "name": "renamed", "versions": {"torch": "0.0"}, "tracer": "eager"},
    )
    assert other != graph
    assert nnviz.diff(graph, other).identical
