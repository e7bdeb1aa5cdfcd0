"""How precise is `nnviz diff` on real library upgrades? Snapshot models under older timm and
transformers releases and the installed ones, diff each pair, and classify every reported line
against a ground truth computed without nnviz (bench/groundtruth.py, bench/truthdiff.py).

    python bench/upgrades.py --cache /work/cache --out upgrades      # upgrades.json + .md
    python bench/upgrades.py --models resnet50,bert --versions timm==1.0.20 transformers==4.57.6
    python bench/upgrades.py --nnviz /path/to/worktree              # that worktree's nnviz

Older releases are installed once with `pip install --no-deps --target CACHE/LIB-VERSION`
(transformers 4.x with its own huggingface_hub and tokenizers), the only network use; snapshots
are cached per nnviz source hash, ground truths per library version. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

from reportlines import distinct, label_of, parse
from truthdiff import KINDS, Truth, classify_report, missed
from upgrade_sets import HF, SETS, companions, library

HERE = Path(__file__).resolve().parent
CURRENT = "current"
UNAVAILABLE = ".unavailable"  # written by groundtruth.py for a model a release does not have


def install(cache: Path, lib: str, version: str) -> Path:
    """CACHE/LIB-VERSION holding that release (installed once, atomically)."""
    target = cache / f"{lib}-{version}"
    if target.exists():
        return target
    extra = companions(lib, version)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{lib}-{version}-"))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp)]
    subprocess.run([*pip, f"{lib}=={version}", *extra], check=True)
    tmp.rename(target)
    return target


# Sources that only compare or present snapshots: a change there reuses the cached snapshots.
_NOT_TRACING = ("diff", "matching", "report", "driftreport", "cli", "render", "fs", "errors")


def nnviz_hash(root: Path) -> str:
    """A hash of the nnviz sources under `root` that can change a snapshot (everything but the
    differ, the renderers and the CLI): snapshots are cached per hash."""
    digest = hashlib.sha256()
    for path in sorted((root / "nnviz").rglob("*")):
        rel = path.relative_to(root / "nnviz")
        if rel.parts[0].startswith(_NOT_TRACING) or path.suffix not in (".py", ".json"):
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def run_worker(
    side: Path, snaps: Path, models: list[str], pythonpath: list[Path], flags: list[str]
) -> None:
    """Snapshot and ground-truth `models` in one subprocess with `pythonpath` first."""
    side.mkdir(parents=True, exist_ok=True)
    snaps.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath)), "PYTHONSAFEPATH": "1"}
    cmd = [sys.executable, str(HERE / "groundtruth.py"), str(side), *models]
    proc = subprocess.run(
        [*cmd, "--snapshots", str(snaps), *flags], env=env, text=True, capture_output=True
    )
    print(proc.stdout.strip(), proc.stderr.strip()[-2000:] if proc.returncode else "", sep="\n")


def collect(args: argparse.Namespace, nnviz_dir: Path) -> dict[tuple[str, str], tuple[Path, Path]]:
    """Run the workers that are missing a snapshot or a ground truth; (lib, version) -> folder."""
    cache, key = Path(args.cache), nnviz_hash(nnviz_dir)
    sides: dict[tuple[str, str], Path | None] = {
        (lib, CURRENT): None for lib in sorted({library(m) for m in args.models})
    }
    for spec in args.versions:
        lib, _, version = spec.partition("==")
        if any(library(m) == lib for m in args.models):
            sides[(lib, version)] = install(cache, lib, version)
    folders, jobs = {}, []
    for (lib, version), libdir in sides.items():
        label = version if libdir else metadata.version(lib)
        truth = cache / "truth" / f"{lib}-{label}"
        snaps = (
            cache / "snapshots" / (key + ("-noshapes" if args.no_shapes else "")) / f"{lib}-{label}"
        )
        models = [m for m in args.models if library(m) == lib and "+" not in m]
        if libdir is None and lib == "transformers":  # config edits: current release only
            models += [f"{m}+{e}" for m in models for e in HF[m].edits]
        todo = [
            m
            for m in models
            if not all((d / f"{m}.json").exists() for d in (truth, snaps))
            and not (truth / f"{m}{UNAVAILABLE}").exists()
        ]
        if todo:
            print(f"-- {lib} {label}: {len(todo)} model(s) to snapshot", flush=True)
            path = [p for p in (libdir, nnviz_dir) if p]
            jobs.append((truth, snaps, todo, path, ["--no-shapes"] if args.no_shapes else []))
        folders[(lib, version)] = truth, snaps
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: run_worker(*job), jobs))
    return folders


def nnviz_diff(old: Path, new: Path, nnviz_dir: Path) -> tuple[str, int]:
    env = {**os.environ, "PYTHONPATH": str(nnviz_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "nnviz", "diff", str(old), str(new)],
        env=env,
        text=True,
        capture_output=True,
    )
    return proc.stdout + (proc.stderr if proc.returncode == 2 else ""), proc.returncode


def measure(name: str, old: tuple[Path, Path], new: tuple[Path, Path], nnviz_dir: Path) -> dict:
    """One pair: nnviz's report, its exit code, each line classified, the ground truth's verdict."""
    lost = [
        f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in (*old, *new) if not p.exists()
    ]
    if lost:
        return {"pair": name, "error": f"missing {', '.join(lost)}"}
    text, code = nnviz_diff(old[1], new[1], nnviz_dir)
    truth = Truth(*(json.loads(p[0].read_text()) for p in (old, new)))
    lines = [line for line in text.splitlines() if line.strip()]
    classified = [(line, *v) for line, v in zip(lines, classify_report(lines, truth), strict=True)]
    counts = {k: sum(1 for _, kind, _ in classified if kind == k) for k in KINDS}
    changes = truth.tensor_changes()
    return {
        "pair": name,
        "lines": len(lines),
        "distinct": distinct(lines),
        "exit": code,
        "expected_exit": 1 if changes else 0,
        "truth_changes": changes,
        "missed": missed(lines, truth),
        **counts,
        "text": text,
        "classified": [
            {"line": ln, "kind": k, "why": w}
            | ({"cause": cause(ln, w, truth)} if k in ("noise", "attribute-only") else {})
            for ln, k, w in classified
        ],
    }


def cause(line: str, why: str, truth: Truth) -> str:
    """A guess at which of issue 12's causes a noise or attribute-only line comes from (to sort
    the notes; not part of the classification)."""
    parsed = parse(line)
    if parsed is None:
        return "?"
    marker, ((name, detail), *_) = parsed
    what = label_of(detail) if detail else ""
    path, op = truth.locate(name)
    if marker == "→":
        return "8 moved siblings"
    if what.startswith("config"):
        return "6 config blob"
    if name.startswith("input:") or "input:" in detail:
        return "5 new optional forward argument"
    if why.startswith("scalar plumbing"):
        return "2 scalar plumbing"
    if "class" in truth.delta(path).fields:
        return "3 subclass swap"
    if op is None and what and not what.startswith(("input ", "output", "called")):
        return "5 module attribute"
    if re.match(r"(arg|input) [A-Za-z_]", what):
        return "4 argument binding"
    return "1 positional op ids"


def pairs(args: argparse.Namespace, folders: dict) -> tuple[list[tuple[str, tuple, tuple]], list]:
    """The pairs to diff, and those skipped because the older release lacks the model."""
    out, skipped = [], []
    for model in args.models:
        lib = library(model)

        def at(version: str, m: str = model, lib: str = lib) -> tuple[Path, Path]:
            truth, snaps = folders[(lib, version)]
            return truth / f"{m}.json", snaps / f"{m}.json"

        for spec in args.versions:
            old_lib, _, version = spec.partition("==")
            if old_lib == lib:
                pair = f"{model} {lib} {version} → {metadata.version(lib)}"
                if at(version)[0].with_suffix(UNAVAILABLE).exists():
                    skipped.append(f"{model} (not in {lib} {version})")
                    continue
                out.append((pair, at(version), at(CURRENT)))
        if lib == "transformers":
            for edit in HF[model].edits:
                out.append((f"{model} edit: {edit}", at(CURRENT), at(CURRENT, f"{model}+{edit}")))
    return out, skipped


def markdown(results: list[dict[str, Any]]) -> str:
    """The table; a wrong exit code is **bold**, `missed` counts unreported real changes."""
    rows = [
        f"| pair | lines | distinct | exit (expected) | {' | '.join(KINDS)} | missed |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ok = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['pair']} | error: {r['error']} | | | | | | | |")
            continue
        code = f"{r['exit']} ({r['expected_exit']})"
        code = code if r["exit"] == r["expected_exit"] else f"**{code}**"
        cells = [str(r["lines"]), str(r["distinct"]), code, *(str(r[k]) for k in KINDS)]
        cells.append(str(len(r["missed"])))
        rows.append(f"| {r['pair']} | {' | '.join(cells)} |")
    total = {k: sum(r[k] for r in ok) for k in (*KINDS, "lines", "distinct")}
    wrong = sum(1 for r in ok if r["exit"] != r["expected_exit"])
    cells = [str(total["lines"]), str(total["distinct"]), f"{wrong} wrong"]
    cells += [str(total[k]) for k in KINDS]
    rows.append(
        f"| **total** ({len(ok)} pairs) | {' | '.join(cells)} | "
        f"{sum(len(r['missed']) for r in ok)} |"
    )
    return "\n".join(rows) + "\n"


def noise_by_cause(results: list[dict[str, Any]], examples: int = 3) -> str:
    """Noise and attribute-only lines counted by their likely cause, with examples."""
    found: dict[str, list[tuple[str, str]]] = {}
    for r in results:
        for c in r.get("classified", []):
            if "cause" in c:
                found.setdefault(f"{c['kind']}: {c['cause']}", []).append((r["pair"], c["line"]))
    out = ["\n## Noise and attribute-only lines by likely cause\n"]
    for key, hits in sorted(found.items(), key=lambda kv: -len(kv[1])):
        out.append(f"- **{key}**: {len(hits)} lines, e.g.")
        out += [f"  - {pair}: `{line.strip()[:160]}`" for pair, line in hits[:examples]]
    return "\n".join(out) + "\n" if found else ""


def edit_reports(results: list[dict[str, Any]]) -> str:
    """Each config edit's `nnviz diff` text, for a reviewer to read."""
    edits = [f"### {r['pair']}\n\n```\n{r['text']}```\n" for r in results if " edit: " in r["pair"]]
    return "\n## Config edits\n\n" + "\n".join(edits) if edits else ""


def write(path: Path, text: str) -> None:
    """Write atomically: a failed run leaves no half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def selections(args: argparse.Namespace) -> list[tuple[str, argparse.Namespace]]:
    """(set name, arguments with its models and versions) per selected set; `--models` makes
    one selection of exactly those models, `--versions` replaces every set's releases."""
    names = list(SETS) if args.set == "all" else [args.set]
    if args.models:
        versions = [v for n in names for v in SETS[n].versions]
        chosen = [
            ("custom", args.models.split(","), args.versions or list(dict.fromkeys(versions)))
        ]
    else:
        chosen = [(n, SETS[n].models, args.versions or SETS[n].versions) for n in names]
    out = []
    for name, models, versions in chosen:
        models = [m.strip() for m in models if m.strip()]
        out.append(
            (name, argparse.Namespace(**{**vars(args), "models": models, "versions": versions}))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--set", choices=[*SETS, "all"], default="tuned", help="which models and releases"
    )
    parser.add_argument("--models", help="comma-separated model names (instead of the set's)")
    parser.add_argument(
        "--versions", nargs="+", help="older releases, lib==X (instead of the set's)"
    )
    parser.add_argument("--nnviz", default=str(HERE.parent), help="PYTHONPATH dir of the nnviz")
    parser.add_argument("--cache", default=os.environ.get("NNVIZ_BENCH_CACHE", "/work/cache"))
    parser.add_argument(
        "--no-shapes", action="store_true", help="trace timm models without inputs (no shapes)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes at once")
    parser.add_argument("--out", help="write OUT.json (every line classified) and OUT.md")
    args = parser.parse_args(argv)
    nnviz_dir = Path(args.nnviz).resolve()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    results, report = [], []
    for name, selection in selections(args):
        folders = collect(selection, nnviz_dir)
        todo, skipped = pairs(selection, folders)
        with ThreadPoolExecutor(args.jobs) as pool:
            found = list(pool.map(lambda pair: measure(*pair, nnviz_dir), todo))
        results += [{"set": name, **r} for r in found]
        table = f"## Set: {name}\n\n" + markdown(found)
        table += f"\nSkipped: {', '.join(skipped)}.\n" if skipped else ""
        print(table, flush=True)
        report.append(table)
    if args.out:
        doc = {"nnviz": str(nnviz_dir), "nnviz_hash": nnviz_hash(nnviz_dir), "results": results}
        write(Path(f"{args.out}.json"), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        text = "\n".join(report) + noise_by_cause(results) + edit_reports(results)
        write(Path(f"{args.out}.md"), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
