"""Layout time of the fully expanded (`-d -1`) graphs of the largest torchvision classifiers.

    python bench/layout.py                 # trace every classifier, lay out the ten largest
    python bench/layout.py --top 3 --engine system

Every torchvision classification model is traced (weights=None, on the meta device) to count its
nodes; the `--top` largest are drawn fully expanded to SVG with the chosen Graphviz engine, and
the time of the Graphviz run (layout + SVG output, which the layout dominates) is reported as a
Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import nnviz
from nnviz.render import render, to_dot
from nnviz.render.engine import choose_engine


def classifiers() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the largest to lay out")
    parser.add_argument("--engine", choices=["embedded", "system"], default=None)
    options = parser.parse_args(argv)

    sizes: list[tuple[int, str]] = []
    graphs: dict[str, nnviz.Graph] = {}
    for name in classifiers():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = nnviz.trace(name)
        except nnviz.NNVizError as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        sizes.append((len(graph), name))
        graphs[name] = graph
        print(f"traced {name}: {len(graph)} nodes", file=sys.stderr)
    largest = sorted(sizes, key=lambda item: (-item[0], item[1]))[: options.top]

    engine = choose_engine(options.engine)
    rows = []
    for nodes, name in largest:
        graph = graphs[name]
        start = time.perf_counter()
        source = to_dot(graph)
        built = time.perf_counter() - start
        start = time.perf_counter()
        svg = render(source, "svg", options.engine)
        laid_out = time.perf_counter() - start
        assert isinstance(svg, bytes)
        clusters = sum(1 for line in source.splitlines() if "subgraph cluster_" in line)
        rows.append(
            f"| {name} | {nodes} | {graph.nx.number_of_edges()} | {clusters} | "
            f"{built:.2f} | {laid_out:.1f} | {len(svg) / 1e6:.1f} |"
        )
        print(rows[-1], file=sys.stderr)
    print(f"Engine: {engine}. Classifiers traced: {len(sizes)}.\n")
    print("| model | nodes | edges | clusters | DOT build (s) | layout + SVG (s) | SVG (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
