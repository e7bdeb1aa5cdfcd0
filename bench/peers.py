"""End-to-end speed and peak memory against the original nnviz and torchview, in one run.

For each model, in turn and interleaved (so that a busy machine slows every tool alike):

- `nnviz MODEL -o x.svg` and `nnviz MODEL -i default -o x.svg` with this nnviz and with the
  original (`nnviz==1.0.0` from PyPI);
- torchview: `draw_graph(model, input_size=(1, 3, 224, 224))` and rendering it to SVG;
- the JSON path: `nnviz x.json -o y.svg` with both nnvizes (each from its own `-j` dump);
- the floor, `python -c "import torch, torchvision"`, measured at the start, between models and
  at the end (its median is subtracted: what a tool costs above importing torch).

Wall time and peak RSS of every child process (`os.wait4`). The original nnviz and torchview are
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


def measure(command: list[str], cwd: Path, timeout: float = 1800) -> tuple[float, float, bool, str]:
    """Wall seconds, peak RSS (MB), success and the last stderr line of one child process."""
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
    note = "" if process.returncode == 0 else (lines[-1][:160] if lines else "failed")
    return seconds, usage.ru_maxrss / 1024, process.returncode == 0, note


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


def run(models: list[str], venv: Path, folder: Path) -> tuple[list[Run], list[float], float]:
    script = Path(sys.executable).parent / "nnviz"
    ours = [str(script)] if script.exists() else [sys.executable, "-m", "nnviz"]
    peer_python = peers_venv(venv)
    original = [str(peer_python.parent / "nnviz")]
    torchview_script = folder / "torchview_run.py"
    torchview_script.write_text(TORCHVIEW)
    floor_command = [sys.executable, "-c", "import torch, torchvision"]
    floors: list[float] = []
    floor_rss: list[float] = []

    def floor() -> None:
        seconds, peak, _, _ = measure(floor_command, folder)
        floors.append(seconds)
        floor_rss.append(peak)
        print(f"  floor {seconds:6.2f}s {peak:7.0f} MB", file=sys.stderr, flush=True)

    runs: list[Run] = []

    def one(tool: str, model: str, command: list[str]) -> None:
        seconds, peak, ok, note = measure(command, folder)
        runs.append(Run(tool, model, seconds, peak, ok, note))
        print(f"  {tool:22} {model:20} {seconds:7.2f}s {peak:7.0f} MB {note}", file=sys.stderr)

    floor()
    for model in models:
        one("nnviz", model, [*ours, model, "-o", f"ours-{model}.svg", "-j"])
        one("nnviz 1.0.0", model, [*original, model, "-o", f"orig-{model}.svg", "-j"])
        one("nnviz -i", model, [*ours, model, "-i", "default", "-o", f"ours-i-{model}.svg"])
        one("nnviz 1.0.0 -i", model, [*original, model, "-i", "default", "-o", f"o-i-{model}.svg"])
        one("torchview", model, [str(peer_python), str(torchview_script), model, f"tv-{model}"])
        one("nnviz json", model, [*ours, f"ours-{model}.json", "-o", f"ours-j-{model}.svg"])
        one("nnviz 1.0.0 json", model, [*original, f"orig-{model}.json", "-o", f"o-j-{model}.svg"])
        floor()
    return runs, floors, statistics.median(floor_rss)


def table(runs: list[Run], floors: list[float], floor_rss: float) -> str:
    """The markdown table: seconds, seconds above the floor, ratios, peak memory."""
    base = statistics.median(floors)
    by = {(r.tool, r.model): r for r in runs}
    models = list(dict.fromkeys(r.model for r in runs))

    def cell(tool: str, model: str) -> str:
        r = by.get((tool, model))
        return "—" if r is None else (f"{r.seconds:.1f}" if r.ok else "failed")

    def above(tool: str, model: str) -> float | None:
        r = by.get((tool, model))
        return max(r.seconds - base, 0.05) if r is not None and r.ok else None

    def ratio(ours: str, theirs: str, model: str) -> str:
        a, b = above(ours, model), above(theirs, model)
        return "—" if a is None or b is None else f"{a / b:.2f}"

    lines = [
        f'Floor (`python -c "import torch, torchvision"`): median {base:.1f} s over '
        f"{len(floors)} runs (min {min(floors):.1f}, max {max(floors):.1f}), peak RSS "
        f"{floor_rss:.0f} MB. Ratios compare time above the floor (lower is better for nnviz).",
        "",
        "| model | nnviz | 1.0.0 | ratio | nnviz -i | 1.0.0 -i | ratio -i | torchview | "
        "-i / torchview | json | 1.0.0 json | json ratio | peak MB (nnviz / -i / 1.0.0) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[str, list[float]] = {"plain": [], "input": [], "torchview": []}
    for model in models:
        for key, (a, b) in {
            "plain": ("nnviz", "nnviz 1.0.0"),
            "input": ("nnviz -i", "nnviz 1.0.0 -i"),
            "torchview": ("nnviz -i", "torchview"),
        }.items():
            x, y = above(a, model), above(b, model)
            if x is not None and y is not None:
                ratios[key].append(x / y)
        json_ours, json_orig = by.get(("nnviz json", model)), by.get(("nnviz 1.0.0 json", model))
        json_ratio = (
            f"{json_orig.seconds / json_ours.seconds:.0f}× faster"
            if json_ours and json_orig and json_ours.ok and json_orig.ok
            else "—"
        )
        peaks = " / ".join(
            f"{by[(t, model)].peak_mb:.0f}" if (t, model) in by else "—"
            for t in ("nnviz", "nnviz -i", "nnviz 1.0.0")
        )
        lines.append(
            f"| {model} | {cell('nnviz', model)} | {cell('nnviz 1.0.0', model)} | "
            f"{ratio('nnviz', 'nnviz 1.0.0', model)} | {cell('nnviz -i', model)} | "
            f"{cell('nnviz 1.0.0 -i', model)} | {ratio('nnviz -i', 'nnviz 1.0.0 -i', model)} | "
            f"{cell('torchview', model)} | {ratio('nnviz -i', 'torchview', model)} | "
            f"{cell('nnviz json', model)} | {cell('nnviz 1.0.0 json', model)} | {json_ratio} | "
            f"{peaks} |"
        )
    lines.append("")
    for key, label in {
        "plain": "nnviz vs 1.0.0",
        "input": "nnviz -i vs 1.0.0 -i",
        "torchview": "nnviz -i vs torchview",
    }.items():
        if ratios[key]:
            median = statistics.median(ratios[key])
            lines.append(
                f"- {label}: median ratio of time above the floor {median:.2f}"
                f" (worst {max(ratios[key]):.2f})."
            )
    failures = [r for r in runs if not r.ok]
    for r in failures:
        lines.append(f"- {r.tool} failed on {r.model}: {r.note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated names.")
    parser.add_argument(
        "--venv", type=Path, default=Path(tempfile.gettempdir()) / "nnviz-peers-venv"
    )
    parser.add_argument("--json", type=Path, help="Write every measurement here.")
    parser.add_argument("--markdown", type=Path, help="Write the table here.")
    options = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print(
            "the original nnviz needs Graphviz's `dot`: apt-get install -y graphviz",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        runs, floors, floor_rss = run(options.models.split(","), options.venv, Path(scratch))
    report = table(runs, floors, floor_rss)
    if options.json:
        document = {"floors": floors, "floor_rss_mb": floor_rss, "runs": [asdict(r) for r in runs]}
        options.json.write_text(json.dumps(document, indent=1) + "\n")
    if options.markdown:
        options.markdown.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
