"""Random edits of a small residual network: whatever the edit, the diff is well formed, renders,
and is identical exactly when nothing architectural changed."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import nnviz
from nnviz.diffing.changelog import changelog, markdown
from nnviz.graph import Edge, Graph, Module, Node

Block = tuple[str, str, int]
"""(container name, block name, kernel size)"""


def network(blocks: list[Block]) -> Graph:
    """input -> blocks (conv, relu, add with a skip) -> output, in named containers."""
    nodes = [Node("input:x", "input", "x")]
    edges: list[Edge] = []
    modules = [Module("", "t.Net")]
    prev = "input:x"
    for stage in dict.fromkeys(s for s, _, _ in blocks):
        modules.append(Module(stage, "torch.nn.Sequential"))
    for stage, name, kernel in blocks:
        path = f"{stage}.{name}"
        modules += [
            Module(path, "t.Block"),
            Module(f"{path}.conv", "torch.nn.Conv2d", 9, {"kernel_size": kernel}, {"w": (kernel,)}),
            Module(f"{path}.act", "torch.nn.ReLU", 0, {"inplace": True}),
        ]
        nodes += [
            Node(f"{path}.conv", "module", "torch.nn.Conv2d", path, f"{path}.conv"),
            Node(f"{path}.act", "module", "torch.nn.ReLU", path, f"{path}.act"),
            Node(f"{path}.add", "function", "operator.add", path),
        ]
        edges += [
            Edge(prev, f"{path}.conv", ("0",)),
            Edge(f"{path}.conv", f"{path}.act", ("0",)),
            Edge(f"{path}.act", f"{path}.add", ("0",)),
            Edge(prev, f"{path}.add", ("1",)),
        ]
        prev = f"{path}.add"
    nodes.append(Node("output", "output", "output"))
    edges.append(Edge(prev, "output", ("0",)))
    return Graph(nodes, edges, modules, {"name": "net"})


BASE: list[Block] = [(f"s{i // 3}", str(i % 3), 3) for i in range(9)]

edits = st.lists(
    st.tuples(
        st.sampled_from(["kernel", "delete", "insert", "rename", "swap", "move"]),
        st.integers(0, 20),
        st.integers(1, 7),
    ),
    max_size=4,
)


def edited(actions: list[tuple[str, int, int]]) -> list[Block]:
    blocks = list(BASE)
    for action, at, value in actions:
        if not blocks:
            break
        i = at % len(blocks)
        stage, name, kernel = blocks[i]
        if action == "kernel":
            blocks[i] = (stage, name, value)
        elif action == "delete":
            del blocks[i]
        elif action == "insert":
            blocks.insert(i, (stage, f"new{at}_{value}", value))
        elif action == "rename":
            blocks[i] = (stage, f"r{at}_{value}", kernel)
        elif action == "swap" and i + 1 < len(blocks):
            blocks[i], blocks[i + 1] = blocks[i + 1], blocks[i]
        elif action == "move":
            blocks[i] = (f"m{value}", name, kernel)
    unique: dict[tuple[str, str], Block] = {(s, n): (s, n, k) for s, n, k in blocks}
    return list(unique.values())


@settings(max_examples=60, deadline=None)
@given(edits)
def test_any_edit_gives_a_well_formed_diff(actions: list[tuple[str, int, int]]) -> None:
    blocks = edited(actions)
    old, new = network(BASE), network(blocks)
    result = nnviz.diff(old, new)
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    names = [n["name"] for n in doc["nodes"]]
    assert len(names) == len(set(names))
    assert all(e["source"] in names and e["target"] in names for e in doc["edges"])
    summary = doc["summary"]  # the changelog's counts: nothing counted for an identical diff
    counted = sum(summary[s] for s in ("added", "removed", "changed", "renamed", "propagated"))
    assert (counted == 0) == result.identical
    assert result.identical == (blocks == BASE)
    text = changelog(doc)
    assert text.endswith("\n") and (text.startswith("identical") == result.identical)
    assert len(markdown(doc)) < 65_536
    for entry in result:
        for change in entry.changes.values():
            if change.cause is not None:
                assert change.cause in names
    # the other way round is just as well formed (not always the mirror image: among identical
    # blocks, which one moved is a tie the greedy matching may break differently)
    assert nnviz.diff(new, old).identical == result.identical


def test_a_renamed_block_is_found() -> None:
    blocks = list(BASE)
    blocks[4] = ("s1", "renamed", 3)
    result = nnviz.diff(network(BASE), network(blocks))
    assert changelog(result.to_dict()).splitlines()[0] == "→ s1.1 renamed to s1.renamed"
