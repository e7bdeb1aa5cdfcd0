"""Benchmark of the structural diff: how long `nnviz.diff` and `nnviz diff a.json b.json` take.

    python bench/diff_bench.py            # prints a table; --repeat N for more samples

Cases:
- resnet152 (one conv's kernel changed): `nnviz.diff` on loaded graphs, and the whole
  `nnviz diff a.json b.json` process, against a baseline measured in the same run
  (`python -c "import nnviz"`, and loading the two snapshots);
- two synthetic 20,000-node graphs (residual blocks in containers) with a handful of changes:
  two hyperparameters, a block removed, a block added, a block renamed.

Targets (issue 4): 20k-node diff under 1 s; the resnet152 process under 0.5 s. Times are the
best of `--repeat` runs (the machine is shared; the minimum is the least disturbed sample).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nnviz
from nnviz.graph import Edge, Graph, Module, Node


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The least disturbed (wall, CPU) seconds of `repeat` runs; CPU counts this process and
    its finished children (user + system), so it holds up when other jobs share the cores."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), _cpu()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return min(walls), min(cpus)


def _cpu() -> float:
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def synthetic(blocks: int, *, edit: bool = False) -> Graph:
    """`blocks` residual blocks of five nodes each (conv, bn, relu, conv, add), plus in/out."""
    nodes = [Node("input:x", "input", "x")]
    edges = []
    modules = [Module("", "bench.Net", 0)]
    prev = "input:x"
    names = [f"stage{i // 100}.{i % 100}" for i in range(blocks)]
    if edit:
        del names[blocks // 3]  # a block removed
        names.insert(blocks // 2, "stage_new.0")  # a block added
        names[blocks // 4] = "renamed.0"  # a block renamed (moved to another container)
    stages = list(dict.fromkeys(n.split(".")[0] for n in names))
    modules += [Module(s, "torch.nn.Sequential", 0) for s in stages]
    for i, block in enumerate(names):
        kernel = 5 if edit and i in (10, blocks - 10) else 3
        fresh = block == "stage_new.0"  # the added block differs from the removed one
        side, width = (1, 128) if fresh else (3, 64)
        modules.append(Module(block, "bench.Block", 0))
        for leaf, cls, hp in (
            ("conv1", "torch.nn.Conv2d", {"kernel_size": {"$tuple": [kernel, kernel]}}),
            ("bn", "torch.nn.BatchNorm2d", {"num_features": width}),
            ("relu", "torch.nn.ReLU", {"inplace": True}),
            ("conv2", "torch.nn.Conv2d", {"kernel_size": {"$tuple": [side, side]}}),
        ):
            path = f"{block}.{leaf}"
            modules.append(Module(path, cls, 0, hp))
            nodes.append(Node(path, "module", cls, block, path))
        nodes.append(Node(f"{block}.add", "function", "operator.add", block))
        chain = [prev, f"{block}.conv1", f"{block}.bn", f"{block}.relu", f"{block}.conv2"]
        edges += [Edge(a, b, ("0",)) for a, b in itertools.pairwise(chain)]
        edges += [
            Edge(f"{block}.conv2", f"{block}.add", ("0",)),
            Edge(prev, f"{block}.add", ("1",)),
        ]
        prev = f"{block}.add"
    nodes.append(Node("output", "output", "output"))
    edges.append(Edge(prev, "output", ("0",)))
    return Graph(nodes, edges, modules, {"name": "synthetic"})


def resnet152_pair(folder: Path) -> tuple[Path, Path]:
    import torch
    import torchvision
    from torch import nn

    with torch.device("meta"):
        model = torchvision.models.resnet152(weights=None)
    a = nnviz.save(nnviz.trace(model, name="resnet152"), folder / "a.json")
    model.layer3[17].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)
    b = nnviz.save(nnviz.trace(model, name="resnet152"), folder / "b.json")
    return a, b


def process(*args: str) -> Callable[[], object]:
    return lambda: subprocess.run([sys.executable, *args], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    rows: list[tuple[str, tuple[float, float], str]] = []

    def row(name: str, fn: Callable[[], object], base: tuple[float, float] | None = None) -> None:
        t = best(fn, repeat)
        ratio = f"{t[0] / base[0]:.2f}x / {t[1] / base[1]:.2f}x" if base else ""
        rows.append((name, t, ratio))

    with tempfile.TemporaryDirectory() as tmp:
        a, b = resnet152_pair(Path(tmp))
        old, new = nnviz.load(a), nnviz.load(b)
        row("load both resnet152 snapshots (baseline L)", lambda: (nnviz.load(a), nnviz.load(b)))
        load = rows[-1][1]
        row(f"diff resnet152 ({len(new)} nodes), vs L", lambda: nnviz.diff(old, new), load)
        result = nnviz.diff(old, new)
        row("  to_dict + changelog text, vs L", result.to_text, load)
        row('python -c "import nnviz" (baseline I)', process("-c", "import nnviz"))
        base = rows[-1][1]
        row(
            "nnviz diff a.json b.json (resnet152), vs I",
            process("-m", "nnviz", "diff", str(a), str(b)),
            base,
        )
    small, big = synthetic(4000), synthetic(4000, edit=True)
    row(f"diff synthetic ({len(small)} vs {len(big)} nodes)", lambda: nnviz.diff(small, big))
    result = nnviz.diff(small, big)
    row("  to_dict + changelog text", result.to_text)
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'wall':>9}  {'CPU':>9}  ratio (wall / CPU)")
    for name, (wall, cpu), ratio in rows:
        print(f"{name:<{width}}  {wall * 1000:6.1f} ms  {cpu * 1000:6.1f} ms  {ratio}")
    print()
    print(result.to_text(), end="")


if __name__ == "__main__":
    main()
