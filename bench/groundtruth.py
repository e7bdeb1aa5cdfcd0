"""Build models under one library version; write each one's nnviz snapshot and ground truth.

Run by `bench/upgrades.py` in a subprocess whose PYTHONPATH selects the timm or transformers
release (and the nnviz under test), one process per version:

    python bench/groundtruth.py OUTDIR MODEL [MODEL ...] [--snapshots SNAPDIR] [--no-shapes]

The ground truth is computed without nnviz, on a real forward pass (CPU, eval, no_grad, a small
fixed input): per module its qualified class, `extra_repr()`, own parameter shapes and plain
attributes (configs as dicts), and per call its output shapes and the sequence of events it makes
itself: tensor-level torch calls (recorded through a `TorchFunctionMode`; calls returning no
tensor, such as `x.shape` or `x.size(1)`, are Python scalar plumbing and left out) and calls of
other modules. nnviz is only imported, through its public API, to write the snapshots.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import sys
import traceback
import types
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

# Run with PYTHONSAFEPATH=1 (bench/html.py must not shadow the standard library's html), so
# this folder is added last, for the model catalogue.
sys.path.append(str(Path(__file__).resolve().parent))
from upgrade_sets import HF, library

UNAVAILABLE = ".unavailable"  # OUT/MODEL.unavailable: the release has no such model


def build(model: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The model in eval mode and its example input (by argument name)."""
    torch.manual_seed(0)
    if library(model) == "timm":
        import timm

        net = timm.create_model(model, pretrained=False)
        cfg = getattr(net, "pretrained_cfg", None) or getattr(net, "default_cfg", {})
        size = tuple(cfg.get("input_size", (3, 224, 224)))
        return net.eval(), {"x": torch.randn(1, *size)}
    import transformers

    family, _, edit = model.partition("+")
    spec = HF[family]
    config = getattr(transformers, spec.config)(**{**spec.settings, **spec.edits.get(edit, {})})
    net = getattr(transformers, spec.model)(config)
    inputs = {name: example(kind, shape) for name, (kind, shape) in spec.inputs.items()}
    return net.eval(), inputs


def example(kind: str, shape: list[int]) -> torch.Tensor:
    """A fixed example input: token ids 0, 1, 2... or random values."""
    if kind == "ids":
        return torch.arange(math.prod(shape)).reshape(shape) % 1000
    return torch.randn(*shape)


def shapes(value: Any) -> list[list[int]]:
    """The shapes of every tensor in a (nested) output, in order."""
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict) or hasattr(value, "to_tuple"):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in shapes(item)]
    return []


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON value for an attribute: plain values as they are, configs (HF configs, dataclasses,
    namespaces) as dicts, anything else by its type name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and depth < 3:
        return [plain(v, depth + 1) for v in value]
    if depth < 3:
        if hasattr(value, "to_dict") and not isinstance(value, nn.Module):
            return {str(k): plain(v, depth + 1) for k, v in sorted(value.to_dict().items())}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
            }
        if isinstance(value, (dict, types.SimpleNamespace)):
            items = value.items() if isinstance(value, dict) else vars(value).items()
            return {
                str(k): plain(v, depth + 1) for k, v in sorted(items, key=lambda kv: str(kv[0]))
            }
    return f"<{type(value).__qualname__}>"


def qualname(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class Recorder(TorchFunctionMode):
    """Records, per module call, the events it makes itself (tensor ops, module calls)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.paths = {id(m): p for p, m in net.named_modules(remove_duplicate=False)}
        self.stack: list[list[list[Any]]] = [[]]
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.handles = [
            h
            for m in net.modules()
            for h in (m.register_forward_pre_hook(self.enter), m.register_forward_hook(self.leave))
        ]

    def enter(self, module: nn.Module, _args: Any) -> None:
        self.stack[-1].append(["module", self.paths[id(module)], qualname(module)])
        self.stack.append([])

    def leave(self, module: nn.Module, _args: Any, output: Any) -> None:
        events = self.stack.pop()
        call = {"out": shapes(output), "events": events}
        self.calls.setdefault(self.paths[id(module)], []).append(call)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        out = shapes(result)
        name = resolve_name(func) or getattr(func, "__qualname__", repr(func))
        if out or name.endswith("__setitem__"):
            self.stack[-1].append(["op", name, out])
        return result


def truth(net: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The ground truth of a model (see the module docstring)."""
    recorder = Recorder(net)
    try:
        with torch.no_grad(), recorder:
            net(**inputs)
    finally:
        for handle in recorder.handles:
            handle.remove()
    modules = {}
    for path, m in net.named_modules():
        attrs = {
            k: plain(v)
            for k, v in sorted(vars(m).items())
            if not k.startswith("_") and k != "training"
        }
        modules[path] = {
            "class": qualname(m),
            "extra_repr": m.extra_repr(),
            "params": {n: list(p.shape) for n, p in m.named_parameters(recurse=False)},
            "attrs": attrs,
            "calls": recorder.calls.get(path, []),
        }
    signature = inspect.signature(net.forward).parameters
    return {"modules": modules, "inputs": sorted(signature)}


def versions() -> dict[str, str]:
    found = {"torch": torch.__version__}
    for lib in ("timm", "transformers"):
        if lib in sys.modules:
            found[lib] = sys.modules[lib].__version__
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Snapshot models and record their ground truth.")
    parser.add_argument("out", type=Path, help="folder for the ground truths")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--snapshots", type=Path, help="folder for the nnviz snapshots")
    parser.add_argument("--no-shapes", action="store_true", help="timm snapshots without inputs")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    failed = 0
    for model in args.models:
        try:
            record(model, args.out, args.snapshots, shapes=not args.no_shapes)
        except Exception as error:  # one model failing must not hide the others' results
            if str(error).startswith("Unknown model"):  # timm: not in this release
                (args.out / f"{model}{UNAVAILABLE}").write_text(f"{error}\n")
                print(f"unavailable {model}: {error}", flush=True)
                continue
            print(f"failed {model}: {type(error).__name__}: {error}"[:500], flush=True)
            traceback.print_exc()
            failed += 1
        else:
            print(f"done {model}", flush=True)
    return 1 if failed else 0


def record(model: str, out: Path, snapshots: Path | None, *, shapes: bool = True) -> None:
    """Write OUT/MODEL.json (the ground truth, unless there) and SNAPSHOTS/MODEL.json (nnviz,
    traced with the example input unless `shapes` is false for a timm model)."""
    if snapshots is not None:
        import nnviz

        net, inputs = build(model)
        given = inputs if shapes or library(model) != "timm" else None
        graph = nnviz.trace(net, name=model.partition("+")[0], inputs=given)
        nnviz.save(graph, snapshots / f"{model}.json")
    target = out / f"{model}.json"
    if not target.exists():
        net, inputs = build(model)  # afresh: tracing must not be able to touch the truth
        found = {"model": model, "versions": versions(), **truth(net, inputs)}
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(found, sort_keys=True))
        tmp.replace(target)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
