"""Interactive HTML page: file size, first view and re-layout times in headless Chromium.

    python bench/html_page.py                                  # the four models below, 3 runs each
    python bench/html_page.py --runs 5 resnet18 resnet152

For each model (traced once, weights=None) it writes `nnviz MODEL -o x.html` at the default
depth, then opens the page from file:// in Debian's headless Chromium (/usr/bin/chromium, driven
by Playwright; see tests/browser/chromium.py) `--runs` times, a fresh tab each time, and takes
the median of:
- first view: from navigation to the first drawing in the DOM (wasm start-up included; `wasm
  ready` is when Graphviz could start);
- expand one: expanding the collapsed module with the most ops, from the first view
  (assembling the DOT, the Graphviz layout and putting the SVG in the page);
- expand all: every module expanded (the largest drawing the page can make), and the share of
  that time spent in Graphviz itself (the rest: parsing the SVG and putting it in the page).
The baseline, measured in the same run: the native Graphviz (pygraphviz, in-process) laying out
the PDF's DOT to SVG, at the default depth (`×native`: the page's first view over it, wasm
start-up included) and fully expanded (beside "expand all"). Load varies on the
shared machine: the load average is printed with the table.
"""

from __future__ import annotations

import sys

# Run as a script, this folder is sys.path[0] and this file would shadow the standard `html`.
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import chromium  # noqa: E402

import nnviz  # noqa: E402
from nnviz.render import render, to_dot  # noqa: E402
from nnviz.render.output import shown_graph  # noqa: E402
from nnviz.render.style import make_style  # noqa: E402

MODELS = ["resnet18", "resnet152", "maxvit_t", "fasterrcnn_mobilenet_v3_large_fpn"]

_BIGGEST = """() => {
  const v = window.nnviz.view, s = window.nnviz.state;
  let best = -1, size = -1;
  v.modules.forEach((m, k) => {
    const ops = m.pieces.reduce((a, p) => a + p.members.length, 0);
    let visible = true;
    for (let a = m.parent; a >= 0; a = v.modules[a].parent) visible = visible && s.expanded.has(a);
    if (!s.expanded.has(k) && visible && ops > size) { best = k; size = ops; }
  });
  return best;
}"""


def _timed_render(opened: chromium.Opened, script: str) -> tuple[float, int, float]:
    """Run `script` (which changes the expansion and draws): the page's time for the whole
    redraw, the drawn node count, and the Graphviz (wasm) share of that time."""
    drawn = opened.renders()
    opened.page.evaluate(script)
    opened.wait_render(drawn)
    timings = opened.page.evaluate("window.nnviz.timings")
    return float(timings["last"]), opened.node_count(), float(timings["layout"])


def measure(context: Any, path: Path) -> dict[str, Any]:
    opened = chromium.open_page(context, path)
    first = float(opened.page.evaluate("window.nnviz.timings.first"))
    wasm = float(opened.page.evaluate("window.nnviz.timings.loaded"))
    nodes = opened.node_count()
    biggest = opened.page.evaluate(_BIGGEST)
    one = (float("nan"), nodes, float("nan"))
    if biggest >= 0:
        one = _timed_render(opened, f"window.nnviz.expand({biggest}); window.nnviz.render(null)")
    every = _timed_render(
        opened,
        "window.nnviz.view.modules.forEach((m, k) => window.nnviz.state.expanded.add(k));"
        "window.nnviz.render(null)",
    )
    assert not opened.errors, opened.errors
    opened.page.close()
    return {"first": first, "wasm": wasm, "nodes": nodes, "one": one, "all": every}


def native(graph: nnviz.Graph, depth: int) -> float:
    """Milliseconds the native Graphviz takes to lay out `graph` at `depth` as the PDF does."""
    style = make_style(None)
    dot = to_dot(shown_graph(graph, style, depth=depth), style)
    start = time.perf_counter()
    render(dot, "svg")
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reason = chromium.missing()
    if reason:
        print(f"bench/html_page.py: {reason}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp, chromium.browser() as context:
        for name in args.models:
            graph = nnviz.trace(name)
            start = time.perf_counter()
            path = nnviz.draw(graph, Path(tmp) / f"{name}.html")
            write_s = time.perf_counter() - start
            runs = [measure(context, path) for _ in range(args.runs)]
            base = statistics.median(native(graph, 2) for _ in range(args.runs))
            full = statistics.median(native(graph, -1) for _ in range(args.runs))
            first = statistics.median(r["first"] for r in runs)
            wasm = statistics.median(r["wasm"] for r in runs)
            every_layout = statistics.median(r["all"][2] for r in runs)
            one = statistics.median(r["one"][0] for r in runs)
            every = statistics.median(r["all"][0] for r in runs)
            rows.append(
                f"| {name} | {len(graph)} | {path.stat().st_size / 1e6:.2f} | {write_s:.1f} "
                f"| {runs[0]['nodes']} | {first / 1000:.2f} | {wasm / 1000:.2f} "
                f"| {base / 1000:.2f} "
                f"| {first / base:.1f} | {runs[0]['one'][1]} | {one / 1000:.2f} "
                f"| {runs[0]['all'][1]} | {every / 1000:.2f} | {every_layout / 1000:.2f} "
                f"| {full / 1000:.2f} |"
            )
            print(rows[-1], file=sys.stderr)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}; runs: {args.runs}")
    print(
        "| model | nodes | file (MB) | write (s) | first view nodes | first view (s) "
        "| wasm ready (s) | native layout (s) | ×native | expand one: nodes | expand one (s) "
        "| expand all: nodes | expand all (s) | of which wasm layout (s) | native, all (s) |"
    )
    print("| --- |" + " ---: |" * 14)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
