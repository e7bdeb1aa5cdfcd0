"""The perf record: re-measure bench/README.md's speed figures, each as a ratio to the last run.

    python bench/perf.py                  # measure, print, append to bench/perf-record.jsonl
    python bench/perf.py --quick          # without the 100,000-node pair
    python bench/perf.py --dry-run        # measure and print, record nothing

Each figure is one process, as a user runs it, timed in CPU seconds (user + system of the
child, `os.wait4`), the least of `--repeat` runs: wall time on a shared machine measures the
neighbours. The figures are bench/README.md's: `import nnviz`; loading a 20,000-node snapshot
(bench/huge.py's synthetic model); `nnviz diff` of it and its edited copy; its default drawing;
`nnviz diff` of the 100,000-node pair; `nnviz diff` and the default drawing of resnet152 (one
conv changed, bench/diff_bench.py). The machine's load average is recorded beside them.

Every run is appended to bench/perf-record.jsonl (commit, time, machine, load, figures) and each
figure is printed as a ratio to the previous run recorded for the same machine (hostname, CPU
model and count): `1.32×` means 32 % slower than last time. Put the table in the note of the
issue whose change it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD = HERE / "perf-record.jsonl"
sys.path.insert(0, str(HERE))

from peers import measure  # noqa: E402


def machine() -> str:
    """Hostname, CPU model and count: runs compare only within one machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} · {model} · {os.cpu_count()} CPUs"


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


_WRITE = """
import sys
from pathlib import Path

sys.path.insert(0, {here!r})
import nnviz
from diff_bench import resnet152_pair, synthetic

folder = Path({folder!r})
for blocks, key in {sizes!r}:
    nnviz.save(synthetic(blocks), folder / f"{{key}}a.json")
    nnviz.save(synthetic(blocks, edit=True), folder / f"{{key}}b.json")
(folder / "r152").mkdir()
resnet152_pair(folder / "r152")
"""


def inputs(folder: Path, big: bool) -> dict[str, Path]:
    """The snapshots the figures read, written once by a child process (so that the parent,
    whose children are measured, stays small)."""
    sizes = [(4000, "20k"), *([(20000, "100k")] if big else [])]
    script = _WRITE.format(here=str(HERE), folder=str(folder), sizes=sizes)
    subprocess.run([sys.executable, "-c", script], check=True)
    found = {p.stem: p for p in folder.glob("*.json")}
    found["r152a"], found["r152b"] = folder / "r152" / "a.json", folder / "r152" / "b.json"
    return found


def figures(files: dict[str, Path], folder: Path, big: bool) -> dict[str, list[str]]:
    python, nnviz = sys.executable, [sys.executable, "-m", "nnviz"]
    steps = {
        "import nnviz": [python, "-c", "import nnviz"],
        "load 20k": [python, "-c", f"import nnviz; nnviz.load({str(files['20ka'])!r})"],
        "nnviz diff 20k": [*nnviz, "diff", str(files["20ka"]), str(files["20kb"])],
        "nnviz draw 20k": [*nnviz, str(files["20ka"]), "-o", str(folder / "20k.svg")],
        "nnviz diff resnet152": [*nnviz, "diff", str(files["r152a"]), str(files["r152b"])],
        "nnviz draw resnet152": [*nnviz, str(files["r152a"]), "-o", str(folder / "r152.svg")],
    }
    if big:
        steps["nnviz diff 100k"] = [*nnviz, "diff", str(files["100ka"]), str(files["100kb"])]
    return steps


def previous(record: Path, here: str) -> dict[str, tuple[float, str]]:
    """Per figure, its value in the last run recorded for this machine that measured it, and
    that run's commit (a `--quick` run leaves the 100k figure's previous value as it was)."""
    last: dict[str, tuple[float, str]] = {}
    if record.exists():
        for line in record.read_text().splitlines():
            run = json.loads(line)
            if run.get("machine") == here:
                for name, cpu in run["figures"].items():
                    last[name] = (cpu, run["commit"])
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per figure; the least counts.")
    parser.add_argument("--quick", action="store_true", help="Leave out the 100,000-node pair.")
    parser.add_argument("--dry-run", action="store_true", help="Record nothing.")
    parser.add_argument("--record", type=Path, default=RECORD, help="The JSON-lines record.")
    options = parser.parse_args(argv)
    here = machine()
    before = previous(options.record, here)
    load_before = os.getloadavg()
    measured: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        files = inputs(folder, big=not options.quick)
        for name, command in figures(files, folder, big=not options.quick).items():
            runs = []
            for _ in range(options.repeat):
                _, _, ok, note, cpu = measure(command, folder)
                if not ok and " diff " not in f" {' '.join(command)} ":  # diff exits 1: differs
                    raise SystemExit(f"{name} failed: {note}")
                runs.append(cpu)
            measured[name] = round(min(runs), 3)
    load = [round(x, 1) for x in (*load_before, *os.getloadavg())]
    run = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "machine": here,
        "load": load,
        "figures": measured,
    }
    print(f"{run['commit']} on {here}, load average {load[0]}–{load[3]} (1 min, before–after)")
    print()
    print("| figure | CPU s | previous (commit) | ratio |")
    print("|---|---:|---:|---:|")
    for name, cpu in measured.items():
        old, where = before.get(name, (0.0, ""))
        ratio = f"{cpu / old:.2f}×" if old else "—"
        shown = f"{old:.3f} ({where})" if old else "—"
        print(f"| {name} | {cpu:.3f} | {shown} | {ratio} |")
    if not options.dry_run:
        with options.record.open("a") as out:
            out.write(json.dumps(run, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
