"""nnviz's compute totals against published figures and two other counters, and what counting
adds to trace time.

For every torchvision classification model (at its default weights' resolution), the timm
architectures and the HF transformers from small configs of `bench/zoo.py` (plus more timm), it
prints nnviz's total MACs (`nnviz.trace(..., inputs=...)` on the meta device, then
`nnviz.costs.total`) beside:

- `published`: torchvision's `weights.meta["_ops"]` (its docs call them GFLOPS; they are
  multiply-adds: resnet50's 4.089 is 4.09 G multiply-accumulates);
- `torch`: `torch.utils.flop_counter.FlopCounterMode` over a plain forward of the same model on
  the same inputs (no fx, no nnviz; its FLOPs halved);
- `ptflops`: ptflops' aten backend (MACs), installed for the bench only
  (`pip install --no-deps --target /work/cache/cost-benchdeps ptflops==0.7.5`; the column is
  empty without it).

and the trace time (CPU time of the process, robust on a shared machine) with counting on
against off (`nnviz.tracers.cost.ENABLED`), in the same run after a warm-up trace, best of
`--pairs` alternating pairs. Differences beyond 1 % are explained in bench/README.md.

    nice -n 10 python bench/cost.py                      # everything (~40 min on 2 busy cores)
    python bench/cost.py --family torchvision --pairs 0  # the figures alone
    python bench/cost.py --only resnet50,vit_b_16 --family torchvision
    python bench/cost.py --markdown bench/cost-results.md --json /tmp/cost.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
EXTRA = os.environ.get("NNVIZ_BENCH_DEPS", "/work/cache/cost-benchdeps")
if os.path.isdir(EXTRA):
    sys.path.append(EXTRA)

MORE_TIMM = (
    "resnet18",
    "mobilenetv2_100",
    "efficientnet_b3",
    "regnetx_002",
    "vgg16",
    "inception_v3",
    "mixer_b16_224",
    "beit_base_patch16_224",
    "levit_128",
    "ghostnet_100",
    "rexnet_100",
    "poolformer_s12",
    "cait_xxs24_224",
    "pit_ti_224",
)
"""timm architectures beyond bench/zoo.py's twelve."""


@dataclass
class Row:
    family: str
    model: str
    inputs: str
    nnviz: float | None = None
    """Total MACs, in G."""
    uncounted: str = ""
    published: float | None = None
    torch: float | None = None
    ptflops: float | None = None
    trace_off: float | None = None
    trace_on: float | None = None
    error: str = ""

    def worst(self) -> float | None:
        """The largest relative difference of nnviz to any other figure."""
        others = [v for v in (self.published, self.torch, self.ptflops) if v]
        if self.nnviz is None or not others:
            return None
        return max(abs(self.nnviz - v) / v for v in others)


def torchvision_entries() -> list[tuple[str, str, Any, Any]]:
    import torchvision

    out = []
    for name in torchvision.models.list_models(module=torchvision.models):
        weights = torchvision.models.get_model_weights(name).DEFAULT
        side = weights.transforms().crop_size[0]
        # a ViT is built for one image size: its weights' figures are at theirs (vit_h_14: 518)
        args = {"image_size": side} if name.startswith("vit_") and side != 224 else None
        out.append((name, f"image{side}", (name, args), weights.meta.get("_ops")))
    return out


def timm_entries() -> list[tuple[str, str, Any, Any]]:
    import zoo

    out = []
    for name in (*zoo.TIMM, *MORE_TIMM):
        spec = ("timm:create_model", {"model_name": name, "pretrained": False})
        out.append((name, "default", spec, None))
    return out


def transformers_entries() -> list[tuple[str, str, Any, Any]]:
    import zoo

    return [
        (name, text, (f"{HERE.parent / 'zoo.py'}:{name}", None), None)
        for name, text in zoo.TRANSFORMERS.items()
    ]


FAMILIES = {
    "timm": timm_entries,
    "transformers": transformers_entries,
    "torchvision": torchvision_entries,
}


def measure(family: str, name: str, text: str, spec: Any, published: Any, pairs: int = 1) -> Row:
    """One model's row; a model that cannot be built or traced gets its error instead."""
    row = Row(family, name, text, published=published)
    try:
        return _measure(row, spec, pairs)
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return row


def _measure(row: Row, spec: Any, pairs: int) -> Row:
    import torch

    import nnviz
    from nnviz import costs, models
    from nnviz.tracers import cost as counting
    from nnviz.tracers.inputs import from_object

    name, text = row.model, row.inputs
    model = models.build(models.parse_spec(spec[0]), spec[1])  # on meta, as `nnviz MODEL` does
    if text == "default":
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        size = cfg.get("input_size", (3, 224, 224))
        text = row.inputs = f"tensor1x{size[0]}x{size[1]}x{size[2]}"
    times: dict[bool, list[float]] = {True: [], False: []}
    graph = None
    try:  # a first, unmeasured trace warms up (imports, caches); then off and on
        for enabled in (True, *(False, True) * pairs):
            counting.ENABLED = enabled
            start = time.process_time()  # CPU time: robust on a machine shared by many
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = nnviz.trace(model, name=name, inputs=text)
            if graph is None:
                graph = traced
            else:
                times[enabled].append(time.process_time() - start)
    finally:
        counting.ENABLED = True
    if pairs:
        row.trace_on, row.trace_off = min(times[True]), min(times[False])
    total = costs.total(graph)
    if total.known:
        row.nnviz = total.macs / 1e9
        row.uncounted = costs.uncounted_text(total.uncounted)
    bound = from_object(text).bind(model.forward, torch.device("meta"))
    row.torch = _flop_counter(model, bound)
    row.ptflops = _ptflops(model, bound)
    return row


def _flop_counter(model: Any, bound: dict[str, Any]) -> float | None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.no_grad(), torch.device("meta"), FlopCounterMode(display=False) as counter:
            model(**bound)
        return counter.get_total_flops() / 2 / 1e9
    except Exception:
        return None


def _ptflops(model: Any, bound: dict[str, Any]) -> float | None:
    try:
        from ptflops import get_model_complexity_info
    except ImportError:
        return None
    import torch

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            macs, _ = get_model_complexity_info(
                model,
                (1,),
                input_constructor=lambda _: dict(bound),
                backend="aten",
                as_strings=False,
                print_per_layer_stat=False,
                verbose=False,
            )
        return float(macs) / 1e9 if macs is not None else None
    except Exception:
        return None


def _g(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if value < 1 else f"{value:.3f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| family | model | input | nnviz GMACs | published | torch FlopCounterMode | "
        "ptflops (aten) | worst Δ | not counted | trace +cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        worst = r.worst()
        overhead = f"{r.trace_on / r.trace_off - 1:+.0%}" if r.trace_on and r.trace_off else "—"
        lines.append(
            f"| {r.family} | {r.model} | {r.inputs} | {_g(r.nnviz)} | {_g(r.published)} | "
            f"{_g(r.torch)} | {_g(r.ptflops)} | "
            f"{'—' if worst is None else f'{worst:.2%}'} | {r.uncounted or r.error} | {overhead} |"
        )
    on = sum(r.trace_on or 0 for r in rows)
    off = sum(r.trace_off or 0 for r in rows)
    beyond = [r.model for r in rows if (r.worst() or 0) > 0.01]
    lines += [
        "",
        f"{len(rows)} models; trace time with cost {on:.1f} s vs {off:.1f} s without "
        f"({on / off - 1:+.1%} overall)"
        if off
        else f"{len(rows)} models",
        f"beyond 1 %: {', '.join(beyond) or 'none'}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="timed trace pairs (counting off, then on) per model, best of each; 0: no timing",
    )
    options = parser.parse_args(argv)
    only = set(options.only.split(",")) if options.only else None
    rows = []
    for family in options.family or list(FAMILIES):
        for name, text, build, published in FAMILIES[family]():
            if only and name not in only:
                continue
            row = measure(family, name, text, build, published, options.pairs)
            rows.append(row)
            worst = row.worst()
            print(
                f"{family:12} {name:32} nnviz {_g(row.nnviz):>9} published {_g(row.published):>9}"
                f" torch {_g(row.torch):>9} ptflops {_g(row.ptflops):>9}"
                f" worst {'—' if worst is None else f'{worst:.2%}':>7}"
                f" {row.uncounted or row.error}",
                flush=True,
            )
            gc.collect()
            _write(rows, options)  # after every model: a long run that is cut keeps its rows
    print(markdown(rows))
    return 0


def _write(rows: list[Row], options: argparse.Namespace) -> None:
    if options.markdown:
        options.markdown.write_text(markdown(rows), encoding="utf-8")
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
