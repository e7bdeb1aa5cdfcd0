"""Trace and draw the whole zoo: every torchvision model, HF transformers, popular timm models.

Each model is traced the way `nnviz MODEL` does it (`tracer="auto"`: torch.fx, else the eager
tracer on the given or the family's example input) and drawn to SVG with the default options,
in a forked worker with a time limit. The report lists the share drawn per family and explains
every failure.

    python bench/zoo.py                              # everything (about 20 minutes on 2 cores)
    python bench/zoo.py --only resnet18,raft_small   # some models
    python bench/zoo.py --family transformers --family timm
    python bench/zoo.py --family research             # research code, with and without -i
    python bench/zoo.py --json bench/zoo-results.json --markdown zoo.md

HF transformers come from small configs (the factories below, usable as MODEL specs:
`nnviz bench/zoo.py:bert -i input_ids:tensor1x16:int64`); timm models are built with
`pretrained=False` (`nnviz timm:create_model -a model_name=resnet50`). Both need the `zoo` extra.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# --- HF transformers from small configs (MODEL specs: bench/zoo.py:bert, ...) ----------------


def bert() -> Any:
    """BERT: 2 layers, hidden 64."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    return BertModel(config)


def gpt2() -> Any:
    """GPT-2 with its LM head: 2 layers, width 64."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=1000, n_positions=64, n_embd=64, n_layer=2, n_head=2)
    return GPT2LMHeadModel(config)


def t5() -> Any:
    """T5 encoder-decoder: 2+2 layers, d_model 64."""
    from transformers import T5Config, T5Model

    config = T5Config(vocab_size=1000, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
    return T5Model(config)


def llama() -> Any:
    """Llama with its LM head: 2 layers, hidden 64, grouped-query attention (4 heads, 2 KV)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


def vit() -> Any:
    """ViT: 32×32 images, 8×8 patches, 2 layers, hidden 64."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    return ViTModel(config)


def whisper() -> Any:
    """Whisper encoder-decoder: 2+2 layers, d_model 64, 200 mel frames."""
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        num_mel_bins=80,
        max_source_positions=100,
        max_target_positions=64,
    )
    return WhisperModel(config)


TRANSFORMERS: dict[str, str] = {
    "bert": "input_ids:tensor1x16:int64",
    "gpt2": "input_ids:tensor1x16:int64",
    "t5": "input_ids:tensor1x16:int64;decoder_input_ids:tensor1x8:int64",
    "llama": "input_ids:tensor1x16:int64",
    "vit": "pixel_values:image32",
    "whisper": "input_features:tensor1x80x200;decoder_input_ids:tensor1x4:int64",
}
"""HF factory name -> its `-i` input."""

TIMM = (
    "resnet50",
    "resnext50_32x4d",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "regnety_016",
    "densenet121",
    "convnext_tiny",
    "vit_base_patch16_224",
    "deit_small_patch16_224",
    "swin_tiny_patch4_window7_224",
    "maxvit_tiny_tf_224",
    "efficientvit_b0",
)
"""Popular timm architectures, built with `pretrained=False`."""


# --- research code: one small model per class of tracer bug (tests/models/research.py) ------

RESEARCH = HERE.parent.parent / "tests" / "models" / "research.py"


def research_entries() -> list[Entry]:
    """Each research model with its `-i` input (it must be drawn), and without one (drawn, or
    refused with a message naming the real cause: the report lists it as failed with it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nnviz_zoo_research", RESEARCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = []
    for name, text in module.INPUTS.items():
        out.append(Entry("research", name, f"{RESEARCH}:{name}", None, text))
        out.append(Entry("research/no -i", name, f"{RESEARCH}:{name}", None, None, retry=False))
    return out


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Entry:
    family: str
    name: str
    spec: str
    args: dict[str, Any] | None = None
    inputs: str | None = None
    retry: bool = True
    """Without `inputs`, retry with `-i default` when fx fails (False: report the failure)."""


@dataclass
class Result:
    family: str
    name: str
    ok: bool
    tracer: str = ""
    inputs: str = ""
    nodes: int = 0
    drawn: int = 0
    """Nodes in the default drawing (after collapsing and folding)."""
    seconds_trace: float = 0.0
    seconds_draw: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str = ""


def entries(families: list[str]) -> list[Entry]:
    out: list[Entry] = []
    if "torchvision" in families:
        from nnviz.models import torchvision_names
        from nnviz.tracers.examples import family

        out += [Entry(f"torchvision/{family(n)}", n, n) for n in torchvision_names()]
    if "transformers" in families:
        out += [
            Entry("transformers", n, f"{HERE}:{n}", None, text) for n, text in TRANSFORMERS.items()
        ]
    if "research" in families:
        out += research_entries()
    if "timm" in families:
        out += [
            Entry("timm", n, "timm:create_model", {"model_name": n, "pretrained": False})
            for n in TIMM
        ]
    return out


def run_one(entry: Entry, folder: Path) -> Result:
    """Trace and draw one model like `nnviz MODEL [-i INPUT] -o MODEL.svg` (in this process)."""
    import nnviz
    from nnviz.errors import TraceError
    from nnviz.render.output import shown_graph
    from nnviz.render.style import make_style

    result = Result(entry.family, entry.name, ok=False, inputs=entry.inputs or "")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            graph = nnviz.trace(entry.spec, name=entry.name, args=entry.args, inputs=entry.inputs)
        except TraceError as exc:
            if entry.inputs is not None or not entry.retry or "-i" not in str(exc):
                raise
            result.notes.append("fx failed; traced with -i default")
            result.inputs = "default"
            graph = nnviz.trace(entry.spec, name=entry.name, args=entry.args, inputs="default")
    result.notes += sorted(
        {str(w.message).split(";")[0] for w in caught if "nnviz" in type(w.category).__module__}
    )
    result.seconds_trace = time.perf_counter() - started
    result.tracer = str(graph.meta.get("tracer"))
    result.nodes = len(graph)
    if not result.inputs and graph.meta.get("inputs") is not None:
        result.inputs = "family example"
    started = time.perf_counter()
    nnviz.draw(graph, folder / f"{entry.name}.svg")
    result.seconds_draw = time.perf_counter() - started
    result.drawn = len(shown_graph(graph, make_style(None)))
    result.ok = True
    return result


def _child(entry: Entry, folder: Path, conn: Any) -> None:
    try:
        result = run_one(entry, folder)
    except BaseException as exc:
        lines = str(exc).strip().splitlines() or [""]
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = Result(entry.family, entry.name, ok=False, inputs=entry.inputs or "")
        result.error = f"{type(exc).__name__}: {lines[0][:300]} ({Path(where.filename).name})"
    conn.send(asdict(result))
    conn.close()


def run_isolated(entry: Entry, folder: Path, timeout: float) -> Result:
    """`run_one` in a forked worker (imports are shared, crashes and hangs are contained)."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(entry, folder, child))
    started = time.perf_counter()
    process.start()
    child.close()
    if parent.poll(timeout):
        try:
            data = parent.recv()
        except EOFError:
            data = None
    else:
        data = None
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join()
    if data is not None:
        return Result(**data)
    elapsed = time.perf_counter() - started
    reason = (
        f"timed out after {timeout:.0f} s"
        if elapsed >= timeout
        else f"worker died (exit code {process.exitcode})"
    )
    return Result(entry.family, entry.name, ok=False, inputs=entry.inputs or "", error=reason)


def markdown(results: list[Result]) -> str:
    """The report: share drawn per family, the failures explained, HF and timm in detail."""
    lines = ["| family | drawn | fx | eager | failed |", "|---|---|---|---|---|"]
    families = sorted({r.family for r in results})
    for fam in families:
        rows = [r for r in results if r.family == fam]
        ok = [r for r in rows if r.ok]
        fx = sum(1 for r in ok if r.tracer == "fx")
        lines.append(
            f"| {fam} | {len(ok)}/{len(rows)} | {fx} | {len(ok) - fx} | "
            f"{', '.join(r.name for r in rows if not r.ok) or '—'} |"
        )
    tv = [r for r in results if r.family.startswith("torchvision")]
    if tv:
        share = sum(r.ok for r in tv) / len(tv)
        lines += ["", f"torchvision: {sum(r.ok for r in tv)} of {len(tv)} drawn ({share:.0%})."]
    failures = [r for r in results if not r.ok]
    if failures:
        lines += ["", "Failures:", ""]
        lines += [f"- `{r.name}` ({r.family}): {r.error}" for r in failures]
    eager = [r for r in results if r.ok and r.tracer == "eager"]
    if eager:
        lines += [
            "",
            "| model | family | input | nodes | trace s | draw s |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.name} | {r.family} | {r.inputs} | {r.nodes} | {r.seconds_trace:.1f} | "
            f"{r.seconds_draw:.1f} |"
            for r in eager
        ]
    drawn = [r for r in results if r.ok]
    if drawn:
        slowest = max(drawn, key=lambda r: r.seconds_draw)
        lines += [
            "",
            f"Drawing at the default settings: at most {slowest.seconds_draw:.1f} s "
            f"({slowest.name}); {sum(r.seconds_draw > 10 for r in drawn)} over 10 s.",
        ]
    total = sum(r.seconds_trace + r.seconds_draw for r in results)
    lines += ["", f"{len(results)} models, {total / 60:.1f} min of tracing and drawing."]
    return "\n".join(lines) + "\n"


def table(results: list[Result]) -> str:
    """Every model: tracer, nodes traced and drawn, trace and draw seconds."""
    lines = [
        "| model | family | tracer | nodes | drawn | trace s | draw s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.ok:
            lines.append(
                f"| {r.name} | {r.family} | {r.tracer} | {r.nodes} | {r.drawn} | "
                f"{r.seconds_trace:.1f} | {r.seconds_draw:.1f} |"
            )
        else:
            lines.append(f"| {r.name} | {r.family} | failed | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--family",
        action="append",
        choices=["torchvision", "transformers", "timm", "research"],
        help="Families to run (repeatable; default all).",
    )
    parser.add_argument("--only", help="Comma-separated model names.")
    parser.add_argument("--timeout", type=float, default=600, help="Seconds per model.")
    parser.add_argument("--json", type=Path, help="Write the results here.")
    parser.add_argument("--markdown", type=Path, help="Write the report here.")
    parser.add_argument("--out", type=Path, help="Keep the SVGs in this folder.")
    parser.add_argument("--table", type=Path, help="Write every model's row here (markdown).")
    parser.add_argument(
        "--from-json",
        type=Path,
        action="append",
        help="Reprint the report from earlier --json files (repeatable) instead of running.",
    )
    options = parser.parse_args(argv)
    if options.from_json:
        results = [Result(**r) for f in options.from_json for r in json.loads(f.read_text())]
        print(markdown(results) + "\n" + table(results))
        return 0

    import torch  # noqa: F401  (imported once before forking)
    import torchvision  # noqa: F401

    import nnviz  # noqa: F401

    sys.path.insert(0, str(HERE.parent))
    todo = entries(options.family or ["torchvision", "transformers", "timm", "research"])
    if options.only:
        wanted = set(options.only.split(","))
        todo = [e for e in todo if e.name in wanted]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for index, entry in enumerate(todo, 1):
            result = run_isolated(entry, folder, options.timeout)
            results.append(result)
            status = f"{result.tracer:5} {result.nodes:5d} nodes" if result.ok else "FAILED"
            print(
                f"[{index}/{len(todo)}] {entry.family:26} {entry.name:40} {status} "
                f"trace {result.seconds_trace:6.1f}s draw {result.seconds_draw:5.1f}s "
                f"{result.error}",
                file=sys.stderr,
                flush=True,
            )
    report = markdown(results)
    if options.json:
        options.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if options.markdown:
        options.markdown.write_text(report)
    if options.table:
        options.table.write_text(table(results))
    print(report)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
