"""Does nnviz's checkpoint verdict tell the truth? Real timm and transformers release pairs and
config edits (the catalogue of bench/upgrades.py), each held to a real `load_state_dict`.

    python bench/checkpoint.py --set tuned --out bench/checkpoint-tuned      # .json + .md
    python bench/checkpoint.py --models resnet50,bert --versions timm==0.9.16 transformers==4.57.6

For each side (a release, in its own process with that release first on the path, as
bench/upgrades.py installs them under the cache) a worker builds each model with a fixed seed
(random initialisation), saves its `state_dict()`, its example input and its output on it, and
its nnviz snapshot (format 4). Then, in this process (the installed releases), for each pair:

- nnviz's verdict and key map come from the two snapshots alone (`nnviz.diff`, `key_map`);
- the ground truth never asks nnviz: the new side's model is built, the old side's saved
  state dict is loaded with `load_state_dict(strict=True)`, then again after applying nnviz's
  key map; where a load succeeds the model runs on the old side's saved input and its output is
  compared with the old side's (the same weights must compute the same, unless the diff
  reports a change).

The confusion table puts each verdict against what torch did: a strict load as it is, only
after the key map, or neither. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE))
from upgrade_sets import HF, SETS, library  # noqa: E402

CURRENT = "current"
TRUTHS = ("as it is", "after the key map", "neither")
VERDICTS = ("loads", "renames", "breaks (map mends)", "breaks", "unknown")


# --- refactors: one model, edited the way people refactor (same weights, other keys) ----------


def _wrap(net: Any) -> Any:
    """The whole model inside a wrapper (`backbone.`): every key renamed."""
    from torch import nn

    class Wrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.backbone = inner

        def forward(self, x: Any) -> Any:
            return self.backbone(x)

    return Wrapper(net)


def _wrap_ids(net: Any) -> Any:
    """`_wrap` for a transformers model called with `input_ids`."""
    from torch import nn

    class IdsWrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.backbone = inner

        def forward(self, input_ids: Any) -> Any:
            return self.backbone(input_ids=input_ids)

    return IdsWrapper(net)


def _into_sequential(net: Any, name: str) -> Any:
    """Submodule `name` moved into a Sequential behind an Identity (`fc` -> `fc.1`)."""
    from torch import nn

    parent, _, last = name.rpartition(".")
    holder = net.get_submodule(parent) if parent else net
    setattr(holder, last, nn.Sequential(nn.Identity(), getattr(holder, last)))
    return net


def _without(net: Any, name: str) -> Any:
    """Submodule `name` replaced by an Identity: its keys are no longer used."""
    from torch import nn

    setattr(net, name, nn.Identity())
    return net


def _without_layers(net: Any, sequential: str, start: int, end: int) -> Any:
    """Layers `start`..`end - 1` deleted from a Sequential: the later ones renumbered."""
    del net.get_submodule(sequential)[start:end]
    return net


def _persistent(net: Any, module: str, buffer: str) -> Any:
    """A non-persistent buffer made persistent: a new key old checkpoints lack."""
    net.get_submodule(module)._non_persistent_buffers_set.discard(buffer)
    return net


REFACTORS: dict[str, dict[str, Any]] = {
    "resnet50": {
        "wrapped": _wrap,
        "fc-into-sequential": lambda n: _into_sequential(n, "fc"),
        "fc-removed": lambda n: _without(n, "fc"),
    },
    "vit_base_patch16_224": {
        "wrapped": _wrap,
        "head-into-sequential": lambda n: _into_sequential(n, "head"),
    },
    "bert": {
        "wrapped": _wrap_ids,
        "pooler-dense-into-sequential": lambda n: _into_sequential(n, "pooler.dense"),
    },
    "vgg19": {  # its 4th conv of stage 3 and that conv's ReLU: every later layer renumbered
        "conv-removed-from-features": lambda n: _without_layers(n, "features", 16, 18),
    },
    "llama": {
        "norm-into-sequential": lambda n: _into_sequential(n, "norm"),
        "inv-freq-persistent": lambda n: _persistent(n, "rotary_emb", "inv_freq"),
    },
}


def build_side(model: str) -> tuple[Any, dict[str, Any]]:
    """A model of the catalogue (`groundtruth.build`), or one refactored (`resnet50~wrapped`)."""
    from groundtruth import build

    base, _, refactor = model.partition("~")
    net, inputs = build(base)
    return (REFACTORS[base][refactor](net).eval() if refactor else net), inputs


# --- worker: one release, in its own process -------------------------------------------------


def worker(out: Path, models: list[str]) -> int:
    """Save each model's state dict, input, output and nnviz snapshot under `out`."""
    import torch

    import nnviz

    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    for model in models:
        try:
            net, inputs = build_side(model)
            torch.save(net.state_dict(), out / f"{model}.pt")
            torch.save(inputs, out / f"{model}.in.pt")
            with torch.no_grad():
                torch.save(first_tensor(net(**inputs)), out / f"{model}.out.pt")
            given = inputs if library(model.partition("~")[0]) != "timm" else None
            try:
                graph = nnviz.trace(net, name=model.partition("+")[0], inputs=given)
            except nnviz.NNVizError:  # fx cannot trace it without data: run it on the input
                graph = nnviz.trace(net, name=model.partition("+")[0], inputs=inputs)
            nnviz.save(graph, out / f"{model}.json")
            print(f"done {model}", flush=True)
        except Exception as error:  # one model failing must not hide the others
            kind = "unavailable" if str(error).startswith("Unknown model") else "failed"
            (out / f"{model}.{kind}").write_text(f"{type(error).__name__}: {error}\n")
            print(f"{kind} {model}: {error}"[:300], flush=True)
            if kind == "failed":
                traceback.print_exc()
    return 0


def first_tensor(value: Any) -> Any:
    """The model's main output: a tensor, or the first tensor of a tuple or model output."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict) or hasattr(value, "to_tuple"):
        value = list(value.values())
    for item in value if isinstance(value, (list, tuple)) else ():
        found = first_tensor(item)
        if found is not None:
            return found
    return None


# --- ground truth: torch alone -----------------------------------------------------------------


def load(state: dict[str, Any], net: Any) -> tuple[bool, str]:
    """A strict `load_state_dict`: whether it succeeded, and torch's message if not."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        return False, " ".join(str(error).split())[:300]
    return True, ""


def truth(
    model: str,
    old: Path,
    key_map: dict[str, str | None] | None,
    loose: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """What torch does with the old side's checkpoint in the new side's model (installed
    releases): strict as it is, strict after `key_map`; the output on the old input; and a
    non-strict load after `loose` (the map of a break that renames too): its missing and
    unexpected keys."""
    import torch

    build = build_side
    state = torch.load(old / f"{model.partition('>')[0]}.pt", weights_only=True)
    found: dict[str, Any] = {}
    net, _ = build(model.partition(">")[-1])
    found["as_is"], found["as_is_error"] = load(state, net)
    found["any_map_could"] = _renamable(state, net.state_dict())
    if loose is not None:
        kept = {loose.get(k, k): v for k, v in state.items() if loose.get(k, k) is not None}
        net, _ = build(model.partition(">")[-1])
        result = net.load_state_dict(kept, strict=False)
        found["loose_missing"] = sorted(result.missing_keys)
        found["loose_unexpected"] = sorted(result.unexpected_keys)
    if key_map is not None:
        mapped = {key_map.get(k, k): v for k, v in state.items() if key_map.get(k, k) is not None}
        net, _ = build(model.partition(">")[-1])
        found["mapped"], found["mapped_error"] = load(mapped, net)
    loaded = found["as_is"] or found.get("mapped")
    if loaded:
        if not found["as_is"]:
            net, _ = build(model.partition(">")[-1])
            net.load_state_dict(mapped)
        else:
            net, _ = build(model.partition(">")[-1])
            net.load_state_dict(state)
        inputs = torch.load(old / f"{model.partition('>')[0]}.in.pt", weights_only=True)
        expected = torch.load(old / f"{model.partition('>')[0]}.out.pt", weights_only=True)
        with torch.no_grad():
            got = first_tensor(net.eval()(**inputs))
        same_shape = got is not None and expected is not None and got.shape == expected.shape
        found["same_output"] = bool(same_shape and torch.allclose(got, expected, atol=1e-5))
        found["max_abs_diff"] = float((got - expected).abs().max()) if same_shape else None
    return found


def _renamable(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether some renaming (dropping old keys allowed) could make a strict load succeed at
    all: every new tensor's shape has an old tensor of that shape to spare. An upper bound
    (shapes alone), computed without nnviz."""
    from collections import Counter

    spare = Counter(tuple(getattr(v, "shape", ())) for v in old.values())
    need = Counter(tuple(getattr(v, "shape", ())) for v in new.values())
    return all(spare[shape] >= n for shape, n in need.items())


# --- nnviz's side ------------------------------------------------------------------------------


def verdict(old: Path, new: Path) -> dict[str, Any]:
    """nnviz's verdict and key map from the two snapshots alone."""
    import nnviz
    from nnviz.errors import CheckpointError

    result = nnviz.diff(old, new)
    assert result.checkpoint is not None
    record = result.checkpoint
    kind = record.status
    if kind == "breaks" and record.mendable:
        kind = "breaks (map mends)"
    try:
        key_map: dict[str, str | None] | None = record.key_map()
    except CheckpointError:
        key_map = None
    loose = record.key_map(strict=False) if key_map is None and record.renamed else None
    left = [k.key for k in record.missing] + [p.new for p in record.mismatched]
    summary = result.summary
    rename_only = not any(summary[s] for s in ("changed", "added", "removed")) and bool(
        summary["renamed"]
    )
    return {
        "verdict": kind,
        "line": record.line(),
        "key_map": key_map,
        "loose_map": loose,
        # torch fills a missing BatchNorm `num_batches_tracked` itself and does not report it
        "left": sorted(k for k in left if not k.endswith(".num_batches_tracked")),
        "renamed": len(record.renamed),
        "mismatched": len(record.mismatched),
        "missing": len(record.missing),
        "unused": len(record.unused),
        "identical": result.identical,
        "rename_only": rename_only,
    }


def agrees(row: dict[str, Any]) -> bool:
    """Whether the verdict says what torch did."""
    told = {"loads": "as it is", "renames": "after the key map"}
    told["breaks (map mends)"] = "after the key map"
    told["breaks"] = "neither"
    return told.get(row["verdict"]) == row["truth"]


# --- the run -----------------------------------------------------------------------------------


def sides_and_pairs(
    args: argparse.Namespace,
) -> tuple[dict[tuple[str, str], list[str]], list[tuple[str, tuple[str, str], str, str]]]:
    """Models to save per (lib, release), and pairs (name, old side, old model, new model)."""
    sides: dict[tuple[str, str], list[str]] = {}
    pairs = []
    for model in args.models:
        lib = library(model)
        sides.setdefault((lib, CURRENT), []).append(model)
        for spec in args.versions:
            old_lib, _, version = spec.partition("==")
            if old_lib != lib:
                continue
            sides.setdefault((lib, version), []).append(model)
            name = f"{model} {lib} {version} → {metadata.version(lib)}"
            pairs.append((name, (lib, version), model, model))
        if lib == "transformers":
            for edit in HF[model].edits:
                sides[(lib, CURRENT)].append(f"{model}+{edit}")
                pairs.append((f"{model} edit: {edit}", (lib, CURRENT), model, f"{model}+{edit}"))
        for refactor in REFACTORS.get(model, {}) if args.refactors else ():
            sides[(lib, CURRENT)].append(f"{model}~{refactor}")
            pairs.append(
                (f"{model} refactor: {refactor}", (lib, CURRENT), model, f"{model}~{refactor}")
            )
    return sides, pairs


def run_workers(args: argparse.Namespace, sides: dict, nnviz_dir: Path) -> dict:
    """The folder of each side, its worker run where anything is missing."""
    from upgrades import install, nnviz_hash

    cache = Path(args.cache)
    base = cache / "checkpoint" / (args.reuse or nnviz_hash(nnviz_dir))
    folders, jobs = {}, []
    for (lib, version), models in sides.items():
        libdir = None if version == CURRENT else install(cache, lib, version)
        label = metadata.version(lib) if version == CURRENT else version
        folder = base / f"{lib}-{label}"
        folders[(lib, version)] = folder
        todo = [
            m
            for m in models
            if not any((folder / f"{m}.{s}").exists() for s in ("json", "unavailable", "failed"))
        ]
        if todo:
            path = [str(p) for p in (libdir, nnviz_dir) if p]
            jobs.append((folder, todo, path))
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: _spawn(*job), jobs))
    return folders


def _spawn(folder: Path, models: list[str], path: list[str]) -> None:
    print(f"-- {folder.name}: {len(models)} model(s)", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONSAFEPATH": "1"}
    cmd = [sys.executable, str(HERE / "checkpoint.py"), "--worker", str(folder), *models]
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    print(proc.stdout.strip(), proc.stderr.strip()[-1500:] if proc.returncode else "", sep="\n")


def measure(name: str, old: Path, new: Path, old_model: str, new_model: str) -> dict[str, Any]:
    row: dict[str, Any] = {"pair": name}
    for folder, m in ((old, old_model), (new, new_model)):
        for kind in ("unavailable", "failed"):
            if (folder / f"{m}.{kind}").exists():
                return {**row, "skipped": f"{m} {kind} in {folder.name}"}
    row |= verdict(old / f"{old_model}.json", new / f"{new_model}.json")
    mapped = row["key_map"] if row["verdict"] != "loads" else None
    found = truth(f"{old_model}>{new_model}", old, mapped, row["loose_map"])
    row |= found
    row["truth"] = (
        "as it is" if found["as_is"] else "after the key map" if found.get("mapped") else "neither"
    )
    row["agrees"] = agrees(row)
    if row["loose_map"] is not None:  # the break's non-strict map leaves what the verdict says
        missing, unexpected = found["loose_missing"], found["loose_unexpected"]
        row["loose_agrees"] = not unexpected and missing == row["left"]
    del row["key_map"], row["loose_map"], row["left"]
    return row


def confusion(rows: list[dict[str, Any]]) -> str:
    """Verdicts (rows) against what torch did (columns)."""
    done = [r for r in rows if "skipped" not in r]
    head = f"| nnviz says ↓ / torch loads → | {' | '.join(TRUTHS)} |"
    out = [head, "| --- |" + " ---: |" * len(TRUTHS)]
    for v in VERDICTS:
        cells = [str(sum(1 for r in done if r["verdict"] == v and r["truth"] == t)) for t in TRUTHS]
        out.append(f"| {v} | {' | '.join(cells)} |")
    agree = sum(1 for r in done if r["agrees"])
    out.append(f"\nAgreement: {agree} of {len(done)} pairs.")
    broken = [r for r in done if r["verdict"] == "breaks"]
    could = [r["pair"] for r in broken if r.get("any_map_could")]
    out.append(
        f"Of {len(broken)} `breaks` no map mends, {len(broken) - len(could)} have new tensors no "
        f"old tensor of their shape could fill (no renaming could mend them)"
        + (f"; shapes alone would allow one for: {', '.join(could)}." if could else ".")
    )
    loose = [r for r in done if "loose_agrees" in r]
    if loose:
        wrong = [r["pair"] for r in loose if not r["loose_agrees"]]
        out.append(
            f"`breaks` that also rename keys: a non-strict load through their map "
            f"(`--key-map`) left exactly the verdict's new and reshaped keys at initialisation, "
            f"no key unexpected, in {len(loose) - len(wrong)} of {len(loose)}"
            + (f" (not: {', '.join(wrong)})." if wrong else ".")
        )
    mapped = [r for r in done if r["truth"] == "after the key map"]
    same = [r for r in mapped if r.get("same_output")]
    other = [r["pair"] for r in mapped if not r.get("same_output")]
    out.append(
        f"Loaded through nnviz's key map: the old output in {len(same)} of {len(mapped)}"
        + (f" (not: {', '.join(other)}; see its diff)." if other else ".")
    )
    return "\n".join(out) + "\n"


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| pair | nnviz | torch | same output | agrees |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['pair']} | skipped: {r['skipped']} | | | |")
            continue
        same = r.get("same_output")
        shown = "—" if same is None else ("yes" if same else f"no ({r['max_abs_diff']})")
        if same is not None and r.get("rename_only"):
            shown += " (rename only)"
        line = r["line"].removeprefix("checkpoint: ").replace("|", "\\|")
        cells = [r["pair"], line, r["truth"], shown, "yes" if r["agrees"] else "**no**"]
        out.append(f"| {' | '.join(cells)} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--set", choices=[*SETS, "all", "refactors"], default="tuned")
    parser.add_argument("--models", help="comma-separated model names (instead of the set's)")
    parser.add_argument("--versions", nargs="+", help="older releases, lib==X")
    parser.add_argument("--nnviz", default=str(HERE.parent), help="PYTHONPATH dir of the nnviz")
    parser.add_argument("--cache", default=os.environ.get("NNVIZ_BENCH_CACHE", "/work/cache"))
    parser.add_argument(
        "--refactors", action="store_true", help="also the refactors of REFACTORS (renames, moves)"
    )
    parser.add_argument(
        "--reuse", metavar="HASH", help="the sides saved under this nnviz hash (not the tree's)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes at once")
    parser.add_argument("--out", help="write OUT.json and OUT.md")
    args, rest = parser.parse_known_args(argv)
    if args.worker:
        return worker(Path(args.worker), rest)
    names = list(SETS) if args.set in ("all", "refactors") else [args.set]
    models = args.models.split(",") if args.models else [m for n in names for m in SETS[n].models]
    if args.set == "refactors":
        models, args.versions, args.refactors = list(REFACTORS), ["none==0"], True
    versions = args.versions or list(dict.fromkeys(v for n in names for v in SETS[n].versions))
    args.models, args.versions = list(dict.fromkeys(models)), versions
    nnviz_dir = Path(args.nnviz).resolve()
    sys.path.insert(0, str(nnviz_dir))
    sides, pairs = sides_and_pairs(args)
    folders = run_workers(args, sides, nnviz_dir)
    rows = [
        measure(name, folders[side], folders[(library(old), CURRENT)], old, new)
        for name, side, old, new in pairs
    ]
    text = "## Confusion\n\n" + confusion(rows) + "\n## Pairs\n\n" + table(rows)
    print(text)
    if args.out:
        for suffix, body in ((".json", json.dumps(rows, indent=1) + "\n"), (".md", text)):
            target = Path(args.out + suffix)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(body)
            tmp.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
