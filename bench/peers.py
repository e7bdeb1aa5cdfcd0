"""End-to-end speed and peak memory against the original nnviz and torchview, in one run.

For each model, in turn and interleaved (so that a busy machine slows every tool alike):

- `nnviz MODEL -o x.svg` and `nnviz MODEL -i default -o x.svg` with this nnviz and with the
  original (`nnviz==1.0.0` from PyPI);
- torchview: `draw_graph(model, input_size=(1, 3, 224, 224))` and rendering it to SVG;
- the JSON path: `nnviz x.json -o y.svg` with both nnvizes, each reading its own snapshot
  (written by an untimed run; nnviz 1.0.0's `-j` cannot write some models);
- the floor, `python -c "import torch, torchvision"`, measured at the start, between models and
  at the end (its median is subtracted: what a tool costs above importing torch).

Wall time, CPU time and peak RSS of every child process (`os.wait4`); each is run `--repeat`
times (default 2) and the best counts. The original nnviz and torchview are
installed by this script into a separate virtual environment (`--venv`), which reuses this
environment's torch and torchvision through a `.pth` line, so every tool runs on the same torch.

    python bench/peers.py                                  # the ten models, ~15 min on 2 cores
    python bench/peers.py --models resnet18,vit_b_16 --markdown table.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MODELS = (
    "resnet18",
    "resnet152",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
    "vit_h_14",
    "swin_t",
    "mobilenet_v3_large",
    "densenet121",
    "maxvit_t",
)

TORCHVIEW = """
import sys, torchvision
from torchview import draw_graph
name, out = sys.argv[1], sys.argv[2]
model = torchvision.models.get_model(name, weights=None).eval()
graph = draw_graph(model, input_size=(1, 3, 224, 224), graph_name=name)
graph.visual_graph.render(out, format="svg", cleanup=True)
"""


@dataclass
class Run:
    tool: str
    model: str
    seconds: float
    peak_mb: float
    ok: bool
    note: str = ""
    cpu: float = 0.0
    """User + system CPU seconds: on a shared machine, steadier than wall time."""


def measure(
    command: list[str], cwd: Path, timeout: float = 1800
) -> tuple[float, float, bool, str, float]:
    """Wall seconds, peak RSS (MB), success, the last stderr line and the CPU seconds of one
    child process."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    errors = [line.strip(" │╭╰─") for line in lines if "Error:" in line]
    last = errors[-1] if errors else (lines[-1] if lines else "failed")
    note = "" if process.returncode == 0 else last[:200]
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, usage.ru_maxrss / 1024, process.returncode == 0, note, cpu


def peers_venv(folder: Path) -> Path:
    """A virtual environment with nnviz==1.0.0 and torchview (made once); its python."""
    python = folder / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # same torch, torchvision, pygraphviz as here: a fair floor, and no 2 GB download
    (Path(purelib) / "shared-torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "nnviz==1.0.0", "torchview"], check=True
    )
    return python


def run(
    models: list[str], venv: Path, folder: Path, repeat: int = 1
) -> tuple[list[Run], list[Run]]:
    script = Path(sys.executable).parent / "nnviz"
    ours = [str(script)] if script.exists() else [sys.executable, "-m", "nnviz"]
    peer_python = peers_venv(venv)
    original = [str(peer_python.parent / "nnviz")]
    torchview_script = folder / "torchview_run.py"
    torchview_script.write_text(TORCHVIEW)
    floor_command = [sys.executable, "-c", "import torch, torchvision"]
    floors: list[Run] = []

    def floor() -> None:
        seconds, peak, _, _, cpu = measure(floor_command, folder)
        floors.append(Run("floor", "", seconds, peak, True, cpu=cpu))
        print(f"  floor {seconds:6.2f}s {cpu:6.2f}s CPU {peak:7.0f} MB", file=sys.stderr)

    runs: list[Run] = []

    def one(tool: str, model: str, command: list[str]) -> None:
        seconds, peak, ok, note, cpu = measure(command, folder)
        runs.append(Run(tool, model, seconds, peak, ok, note, cpu))
        print(
            f"  {tool:18} {model:20} {seconds:7.2f}s {cpu:7.2f}s CPU {peak:7.0f} MB {note}",
            file=sys.stderr,
            flush=True,
        )

    floor()
    for model in models:
        # the JSON each tool reads back, written by an untimed run (`-j` beside a drawing)
        measure([*ours, model, "-o", f"ours-{model}.json"], folder)
        _, _, dumped, why, _ = measure([*original, model, "-o", f"orig-{model}.svg", "-j"], folder)
        for _ in range(repeat):
            one("nnviz", model, [*ours, model, "-o", f"ours-{model}.svg"])
            one("nnviz 1.0.0", model, [*original, model, "-o", f"orig-{model}.svg"])
            one("nnviz -i", model, [*ours, model, "-i", "default", "-o", f"ours-i-{model}.svg"])
            one(
                "nnviz 1.0.0 -i",
                model,
                [*original, model, "-i", "default", "-o", f"oi-{model}.svg"],
            )
            one("torchview", model, [str(peer_python), str(torchview_script), model, f"tv-{model}"])
            one("nnviz json", model, [*ours, f"ours-{model}.json", "-o", f"ours-j-{model}.svg"])
            if dumped:
                one("nnviz 1.0.0 json", model, [*original, f"orig-{model}.json", "-o", "oj.svg"])
            floor()
        if not dumped:
            runs.append(Run("nnviz 1.0.0 json", model, 0, 0, False, f"its -j failed: {why}"))
    return runs, floors


def table(runs: list[Run], floors: list[Run]) -> str:
    """The markdown tables: wall and CPU seconds, ratios above the floor, peak memory."""
    by: dict[tuple[str, str], Run] = {}
    for r in runs:  # best of the repeats: least wall and least CPU time, highest peak
        best = by.get((r.tool, r.model))
        if best is None or (r.ok and not best.ok):
            by[(r.tool, r.model)] = Run(**asdict(r))
        elif r.ok and best.ok:
            best.seconds, best.cpu = min(best.seconds, r.seconds), min(best.cpu, r.cpu)
            best.peak_mb = max(best.peak_mb, r.peak_mb)
    models = list(dict.fromkeys(r.model for r in runs))
    base = {
        "wall": statistics.median(f.seconds for f in floors),
        "cpu": statistics.median(f.cpu for f in floors),
    }
    floor_rss = statistics.median(f.peak_mb for f in floors)

    def value(tool: str, model: str, kind: str) -> float | None:
        r = by.get((tool, model))
        if r is None or not r.ok:
            return None
        return r.seconds if kind == "wall" else r.cpu

    def above(tool: str, model: str, kind: str) -> float | None:
        v = value(tool, model, kind)
        return None if v is None else max(v - base[kind], 0.05)

    pairs = {
        "nnviz / 1.0.0": ("nnviz", "nnviz 1.0.0"),
        "-i: nnviz / 1.0.0": ("nnviz -i", "nnviz 1.0.0 -i"),
        "-i: nnviz / torchview": ("nnviz -i", "torchview"),
    }
    tools = ["nnviz", "nnviz 1.0.0", "nnviz -i", "nnviz 1.0.0 -i", "torchview"]
    walls = [f.seconds for f in floors]
    lines = [
        f'Floor (`python -c "import torch, torchvision"`), {len(floors)} runs: wall median '
        f"{base['wall']:.1f} s (min {min(walls):.1f}, max {max(walls):.1f}), CPU median "
        f"{base['cpu']:.1f} s, peak RSS {floor_rss:.0f} MB. A ratio divides the time above the "
        "floor of the first tool by the second's: below 1, nnviz is faster.",
        "",
    ]
    summary: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in pairs}
    for kind in ("wall", "cpu"):
        lines += [
            f"{'Wall' if kind == 'wall' else 'CPU'} seconds (ratios above the floor):",
            "",
            "| model | " + " | ".join(tools) + " | " + " | ".join(pairs) + " |",
            "|---" * (1 + len(tools) + len(pairs)) + "|",
        ]
        for model in models:
            cells = []
            for tool in tools:
                v = value(tool, model, kind)
                cells.append("failed" if (tool, model) in by and v is None else f"{v or 0:.1f}")
            for label, (a, b) in pairs.items():
                x, y = above(a, model, kind), above(b, model, kind)
                if x is None or y is None:
                    cells.append("—")
                else:
                    summary[label][kind].append(x / y)
                    cells.append(f"{x / y:.2f}")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "JSON path and peak memory:",
        "",
        "| model | `nnviz x.json -o y.svg` | 1.0.0 | speed-up | peak RSS nnviz json | "
        "peak RSS nnviz / -i / 1.0.0 / torchview (MB) | nnviz above floor RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models:
        ours, orig = by.get(("nnviz json", model)), by.get(("nnviz 1.0.0 json", model))
        speed = (
            f"{orig.seconds / ours.seconds:.0f}× wall, {orig.cpu / max(ours.cpu, 0.01):.0f}× CPU"
            if ours and orig and ours.ok and orig.ok
            else "—"
        )
        peaks = " / ".join(
            f"{by[(t, model)].peak_mb:.0f}" if (t, model) in by else "—"
            for t in ("nnviz", "nnviz -i", "nnviz 1.0.0", "torchview")
        )
        extra = max(
            (by[(t, model)].peak_mb for t in ("nnviz", "nnviz -i") if (t, model) in by),
            default=floor_rss,
        )
        lines.append(
            f"| {model} | {ours.seconds if ours else 0:.2f} | "
            f"{f'{orig.seconds:.1f}' if orig and orig.ok else 'failed'} | "
            f"{speed} | {ours.peak_mb if ours else 0:.0f} | {peaks} | {extra - floor_rss:+.0f} |"
        )
    lines.append("")
    for label, kinds in summary.items():
        if kinds["wall"]:
            lines.append(
                f"- {label}: median ratio {statistics.median(kinds['wall']):.2f} wall, "
                f"{statistics.median(kinds['cpu']):.2f} CPU (worst {max(kinds['wall']):.2f} "
                f"wall, {max(kinds['cpu']):.2f} CPU)."
            )
    for r in runs:
        if not r.ok:
            lines.append(f"- {r.tool} failed on {r.model}: {r.note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated names.")
    parser.add_argument(
        "--venv", type=Path, default=Path(tempfile.gettempdir()) / "nnviz-peers-venv"
    )
    parser.add_argument("--repeat", type=int, default=2, help="Runs of each; the best counts.")
    parser.add_argument("--json", type=Path, help="Write every measurement here.")
    parser.add_argument("--markdown", type=Path, help="Write the table here.")
    parser.add_argument("--from-json", type=Path, help="Only print the table of an earlier --json.")
    options = parser.parse_args(argv)
    if options.from_json:
        document = json.loads(options.from_json.read_text())
        print(table([Run(**r) for r in document["runs"]], [Run(**f) for f in document["floors"]]))
        return 0
    if shutil.which("dot") is None:
        print(
            "the original nnviz needs Graphviz's `dot`: apt-get install -y graphviz",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        runs, floors = run(options.models.split(","), options.venv, Path(scratch), options.repeat)
    report = table(runs, floors)
    if options.json:
        document = {"floors": [asdict(f) for f in floors], "runs": [asdict(r) for r in runs]}
        options.json.write_text(json.dumps(document, indent=1) + "\n")
    if options.markdown:
        options.markdown.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
