"""Buses: one trunk for a value that many far-away ops read (densenet's concatenations).

Graphviz routes every edge that spans several ranks through a chain of virtual nodes; a densenet
block, where each layer's output feeds every later layer, turns into ~185,000 of them and a
layout that runs for tens of minutes. A bus draws such a value as one trunk of small relay points
running down past its readers, with a short branch (carrying the edge's id and arrow) to each:
the same connections, a fraction of the virtual nodes, and a much calmer picture.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnviz.graph import Graph, parent_path

MIN_READERS = 3
"""A value needs at least this many readers to become a bus ..."""
MIN_SPAN = 4
"""... and its farthest reader must lie at least this many ranks below it."""


@dataclass(frozen=True)
class Bus:
    """A value drawn as a trunk: its producer and its readers, nearest first."""

    source: str
    targets: tuple[str, ...]


def ranks(graph: Graph) -> dict[str, int]:
    """Longest-path rank of every node (0 for sources); empty when the graph has a cycle."""
    waiting = {node.id: len(graph.predecessors(node.id)) for node in graph.nodes}
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    rank: dict[str, int] = dict.fromkeys(ready, 0)
    while ready:  # Kahn's order: a node once all its inputs are ranked
        node_id = ready.pop()
        for successor in graph.successors(node_id):
            rank[successor] = max(rank.get(successor, 0), rank[node_id] + 1)
            waiting[successor] -= 1
            if waiting[successor] == 0:
                ready.append(successor)
    return rank if len(rank) == len(waiting) and not any(waiting.values()) else {}


def edge_span(graph: Graph, rank: dict[str, int] | None = None) -> int:
    """Sum over edges of how many ranks each one crosses: roughly Graphviz's virtual nodes."""
    rank = ranks(graph) if rank is None else rank
    return sum(abs(rank.get(e.target, 0) - rank.get(e.source, 0)) for e in graph.edges)


def plan_buses(graph: Graph, rank: dict[str, int] | None = None) -> list[Bus]:
    """The values to draw as buses, in trace order (deterministic)."""
    rank = ranks(graph) if rank is None else rank
    if not rank:
        return []
    order = {node.id: i for i, node in enumerate(graph.nodes)}
    buses = []
    for node in graph.nodes:
        readers = graph.successors(node.id)
        if len(readers) < MIN_READERS:
            continue
        if max(rank[r] - rank[node.id] for r in readers) < MIN_SPAN:
            continue
        readers.sort(key=lambda r: (rank[r], order[r]))
        buses.append(Bus(node.id, tuple(readers)))
    return buses


def common_cluster(graph: Graph, a: str | None, b: str | None) -> str | None:
    """The innermost drawn module containing both cluster paths (None: the top level)."""
    if a is None or b is None:
        return None
    left, right = a.split("."), b.split(".")
    shared = 0
    while shared < min(len(left), len(right)) and left[shared] == right[shared]:
        shared += 1
    path: str | None = ".".join(left[:shared])
    while path and path not in graph.modules:
        path = parent_path(path)
    return path or None
