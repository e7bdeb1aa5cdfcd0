"""Huge graphs stay linear: a synthetic 20,000-node model loaded, diffed and drawn.

    python bench/huge.py                 # --blocks 4000 (20,002 nodes); --repeat N

The model is `diff_bench.synthetic`: residual blocks (conv, bn, relu, conv, add) in containers of
100, and an edited copy (two kernel sizes, a block removed, one added, one moved). Each step runs
as its own process, as a user would run it (wall and CPU seconds, peak RSS via `os.wait4`, best
of `--repeat`): `python -c "import nnviz"` (the baseline), loading one snapshot, `nnviz diff
a.json b.json`, and `nnviz a.json -o a.svg` (the default drawing: depth 2, so 4,000 collapsed
blocks in 40 clusters). In-process times of `nnviz.load` and `nnviz.diff` are printed too.

Targets (issue 16): load at most 0.5 s, diff at most 1 s, the default drawing at most 10 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import measure  # noqa: E402

import nnviz  # noqa: E402


def best_of(repeat: int, command: list[str], cwd: Path) -> tuple[float, float, float]:
    """The least disturbed (wall s, CPU s, peak MB) of `repeat` runs of `command`."""
    runs = []
    for _ in range(repeat):
        seconds, peak, ok, note, cpu = measure(command, cwd)
        if not ok and "diff" not in command:  # nnviz diff exits 1 on a difference
            raise SystemExit(f"{' '.join(command)} failed: {note}")
        runs.append((seconds, cpu, peak))
    return min(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        a, b = folder / "a.json", folder / "b.json"
        # Children forked from a process holding large graphs would report its memory as theirs:
        # measure the processes first, from a parent that has built nothing yet.
        write = (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); import nnviz; "
            f"from diff_bench import synthetic; "
            f"nnviz.save(synthetic({options.blocks}), {str(a)!r}); "
            f"nnviz.save(synthetic({options.blocks}, edit=True), {str(b)!r})"
        )
        measure([sys.executable, "-c", write], folder)
        python = sys.executable
        steps = {
            'python -c "import nnviz" (baseline)': [python, "-c", "import nnviz"],
            "load a.json": [python, "-c", f"import nnviz; nnviz.load({str(a)!r})"],
            "nnviz diff a.json b.json": [python, "-m", "nnviz", "diff", str(a), str(b)],
            "nnviz a.json -o a.svg": [python, "-m", "nnviz", str(a), "-o", str(folder / "a.svg")],
        }
        rows = {name: best_of(options.repeat, cmd, folder) for name, cmd in steps.items()}
        size = a.stat().st_size / 1e6
        loaded = [nnviz.load(a)]
        started = time.perf_counter()
        for _ in range(options.repeat):
            loaded.append(nnviz.load(a))
        load_in = (time.perf_counter() - started) / options.repeat
        other = nnviz.load(b)
        started = time.perf_counter()
        result = nnviz.diff(loaded[0], other)
        diff_in = time.perf_counter() - started
    base = rows['python -c "import nnviz" (baseline)']
    print(f"synthetic model: {len(loaded[0]):,} nodes, snapshot {size:.1f} MB")
    print(f"in process: nnviz.load {load_in:.2f} s, nnviz.diff {diff_in:.2f} s")
    print()
    print("| step | wall s | CPU s | above `import nnviz` (wall / CPU) | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu, peak) in rows.items():
        above = f"{wall - base[0]:.2f} / {cpu - base[1]:.2f}" if name != next(iter(rows)) else ""
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {above} | {peak:.0f} |")
    print()
    print(result.to_text(), end="")


if __name__ == "__main__":
    main()
