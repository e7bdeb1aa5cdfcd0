"""torch.export over the zoo: does each model export, how long it takes, and does the export
tracer's graph agree with the fx (else eager) tracer's.

For every model (torchvision, HF transformers from small configs, timm; see `bench/zoo.py`) it
traces with `tracer="fx"` (the eager tracer when fx cannot) and with `tracer="export"` on the
same input, each in a forked worker with a time limit, and compares the two graphs with
`nnviz.diff`: `agree` when identical, else the diff's counts (changed / added / removed entries)
and the kinds of the first differing entries. The baseline time is the reference tracer's in the
same run (`export / ref` is the ratio).

    python bench/export.py                                # the whole zoo (long on 2 cores)
    python bench/export.py --only resnet18,vit_b_16,bert  # some models
    python bench/export.py --family transformers --markdown export.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import zoo  # noqa: E402  (the zoo's model lists and small HF configs)


@dataclass
class Row:
    family: str
    name: str
    inputs: str = ""
    ref: str = ""
    """The reference tracer (fx, else eager) and whether it traced."""
    ref_nodes: int = 0
    ref_seconds: float = 0.0
    export_ok: bool = False
    reason: str = ""
    export_nodes: int = 0
    export_seconds: float = 0.0
    agree: bool = False
    differences: str = ""
    notes: list[str] = field(default_factory=list)


MORE_TIMM = (
    "eva02_tiny_patch14_224",
    "beit_base_patch16_224",
    "mixer_s16_224",
    "efficientformer_l1",
    "hrnet_w18_small",
    "inception_v3",
    "seresnext26d_32x4d",
    "mobilevit_xxs",
    "xcit_nano_12_p16_224",
    "cait_xxs24_224",
    "poolformer_s12",
    "ghostnet_100",
    "dla34",
    "regnetx_002",
    "crossvit_tiny_240",
    "twins_svt_small",
    "nfnet_l0",
    "repvgg_a2",
    "res2net50_26w_4s",
    "pit_ti_224",
    "gcvit_xxtiny",
    "levit_128s",
    "coat_lite_tiny",
    "edgenext_xx_small",
)
"""timm architectures beyond the zoo's twelve (the upgrades bench's ground-truth list and a few
more families): export meets more kinds of code here than in torchvision."""

NO_CACHE = ("gpt2", "t5", "llama", "whisper")
"""HF decoders also run with `use_cache:False`: their `DynamicCache` output is not a pytree type
torch.export can flatten, so as given they fail; without the cache they are ordinary graphs."""


def entries(families: list[str]) -> list[zoo.Entry]:
    """The zoo's entries, the HF decoders again without their cache, and more timm models."""
    todo = zoo.entries(families)
    if "transformers" in families:
        todo += [
            zoo.Entry(
                "transformers",
                f"{n} (use_cache:False)",
                f"{zoo.HERE}:{n}",
                None,
                f"{zoo.TRANSFORMERS[n]};use_cache:False",
            )
            for n in NO_CACHE
        ]
    if "timm" in families:
        todo += [
            zoo.Entry("timm", n, "timm:create_model", {"model_name": n, "pretrained": False})
            for n in MORE_TIMM
        ]
    return todo


def _input(entry: zoo.Entry) -> str:
    if entry.inputs:
        return entry.inputs
    if entry.family.startswith("torchvision"):
        from nnviz.tracers.examples import example_text

        return example_text(entry.name)
    return "default"


def run_one(entry: zoo.Entry) -> Row:
    import nnviz
    from nnviz.errors import NNVizError
    from nnviz.tracers.export import ExportFailure

    inputs = _input(entry)
    row = Row(entry.family, entry.name, inputs)
    ref = None
    for tracer in ("fx", "eager"):
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = nnviz.trace(entry.spec, args=entry.args, inputs=inputs, tracer=tracer)
        except NNVizError as exc:
            row.notes.append(f"{tracer}: {str(exc)[:120]}")
            continue
        row.ref, row.ref_nodes = tracer, len(ref.nodes)
        row.ref_seconds = time.perf_counter() - started
        break
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = nnviz.trace(entry.spec, args=entry.args, inputs=inputs, tracer="export")
    except ExportFailure as failure:
        row.export_seconds = time.perf_counter() - started
        record = failure.result
        row.reason = f"{record.reason}" + (f" ({record.where})" if record.where else "")
        return row
    except Exception as exc:  # a conversion bug is a finding too
        row.export_seconds = time.perf_counter() - started
        row.reason = f"nnviz: {type(exc).__name__}: {str(exc)[:160]}"
        return row
    row.export_seconds = time.perf_counter() - started
    row.export_ok, row.export_nodes = True, len(exported.nodes)
    if ref is not None:
        diff = nnviz.diff(ref, exported)
        row.agree = diff.identical
        if not row.agree:
            counts = diff.summary
            row.differences = ", ".join(
                f"{counts[k]} {k}" for k in ("changed", "added", "removed") if counts.get(k)
            )
            ops = sorted({e.name.rsplit(".", 1)[-1].split(":")[0] for e in diff})[:4]
            row.differences += f" ({', '.join(ops)})" if ops else ""
    return row


def _worker(entry: zoo.Entry, queue: Any) -> None:
    try:
        queue.put(asdict(run_one(entry)))
    except BaseException as exc:  # reported, never a hung bench
        queue.put({"family": entry.family, "name": entry.name, "reason": f"bench: {exc!r}"})


def run(entry: zoo.Entry, timeout: float) -> Row:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(entry, queue))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return Row(entry.family, entry.name, reason=f"timed out after {timeout:.0f} s")
    try:
        return Row(**queue.get(timeout=5))
    except Exception:
        return Row(entry.family, entry.name, reason=f"worker died (exit {process.exitcode})")


def markdown(rows: list[Row]) -> str:
    ok = sum(r.export_ok for r in rows)
    agree = sum(r.agree for r in rows)
    lines = [
        f"{ok} of {len(rows)} export; {agree} of {ok} give the reference tracer's graph exactly.",
        "",
        "| family | model | ref | ref nodes | ref s | export | export nodes | export s | "
        "export / ref | agreement |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        status = "ok" if r.export_ok else f"fails: {r.reason}".replace("|", "\\|")
        ratio = f"{r.export_seconds / r.ref_seconds:.1f}×" if r.ref_seconds and r.export_ok else ""
        agreement = "identical" if r.agree else (r.differences or ("—" if r.export_ok else ""))
        lines.append(
            f"| {r.family} | {r.name} | {r.ref or 'none'} | {r.ref_nodes or ''} | "
            f"{r.ref_seconds:.1f} | {status} | {r.export_nodes or ''} | {r.export_seconds:.1f} | "
            f"{ratio} | {agreement} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append",
                        choices=["torchvision", "transformers", "timm"])  # fmt: skip
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path, help="the rows so far, rewritten after each model")
    options = parser.parse_args()
    todo = entries(options.family or ["torchvision", "transformers", "timm"])
    if options.only:
        wanted = set(options.only.split(","))
        todo = [e for e in todo if e.name in wanted]
    rows = []
    for entry in todo:
        row = run(entry, options.timeout)
        rows.append(row)
        print(f"{row.family:24} {row.name:32} export={'ok' if row.export_ok else 'FAIL'} "
              f"agree={row.agree} {row.differences or row.reason}", flush=True)  # fmt: skip
        if options.json:
            options.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    text = markdown(rows)
    if options.markdown:
        options.markdown.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
