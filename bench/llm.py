"""Production-sized LLMs from their configs, traced on the meta device: time, memory, diff, draw.

The factories below are MODEL specs (they need the `zoo` extra, for transformers):

    nnviz bench/llm.py:llama3_70b -i input_ids:tensor1x16:int64 -o llama3-70b.json
    nnviz bench/llm.py:qwen2_7b -i input_ids:tensor1x16:int64 -o qwen2-7b.svg
    nnviz bench/llm.py:llama3_70b -a num_hidden_layers=81 -i input_ids:tensor1x16:int64 -o b.json

nnviz builds a file's callable under `torch.device("meta")`, so `LlamaForCausalLM(config)` makes
no weights (70.6 B parameters counted, none allocated) and the eager tracer runs the forward pass
on meta tensors. Keyword arguments (`-a`) override config fields. The config values are written
out here: nothing is downloaded.

    python bench/llm.py                    # both models; a markdown table on stdout
    python bench/llm.py --models qwen2_7b --keep out/

For each model, every step is its own process (`os.wait4` gives CPU time and peak RSS): the
floor `python -c "import torch, torchvision"`; tracing to a snapshot; the same with one config
field changed (a second snapshot); `nnviz diff` of the two; `nnviz x.json -o x.svg` (the default
drawing: layers collapsed, bookkeeping folded).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
INPUT = "input_ids:tensor1x16:int64"

LLAMA3_70B: dict[str, Any] = {
    "vocab_size": 128_256,
    "hidden_size": 8192,
    "intermediate_size": 28_672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rope_theta": 500_000.0,
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 128_000,
    "eos_token_id": 128_001,
}
"""meta-llama/Meta-Llama-3-70B's config.json (architecture fields)."""

QWEN2_7B: dict[str, Any] = {
    "vocab_size": 152_064,
    "hidden_size": 3584,
    "intermediate_size": 18_944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 131_072,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "bos_token_id": 151_643,
    "eos_token_id": 151_643,
}
"""Qwen/Qwen2-7B's config.json (architecture fields)."""


def llama3_70b(**overrides: Any) -> Any:
    """Llama-3-70B with its LM head: 80 layers, hidden 8192, 64 heads, 8 KV heads."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**{**LLAMA3_70B, **overrides}))


def qwen2_7b(**overrides: Any) -> Any:
    """Qwen2-7B with its LM head: 28 layers, hidden 3584, 28 heads, 4 KV heads."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**{**QWEN2_7B, **overrides}))


MODELS = {"llama3_70b": "Llama-3-70B", "qwen2_7b": "Qwen2-7B"}
CHANGE = "intermediate_size=30000"
"""The second snapshot's one change (every layer's MLP width): what the diff has to report."""


def run_model(
    name: str,
    folder: Path,
    spec_file: Path = HERE,
    title: str | None = None,
    change: str = CHANGE,
    html: bool = False,
) -> dict[str, Any]:
    """Trace, trace changed, diff, draw (and the HTML page): each a child process; seconds,
    CPU and peak RSS."""
    sys.path.insert(0, str(HERE.parent))
    from peers import measure

    nnviz = [sys.executable, "-m", "nnviz"]
    spec = f"{spec_file}:{name}"
    a, b, svg = folder / f"{name}.json", folder / f"{name}-changed.json", folder / f"{name}.svg"
    steps = {
        "floor": [sys.executable, "-c", "import torch, torchvision"],
        "trace": [*nnviz, spec, "-i", INPUT, "-o", str(a)],
        "trace changed": [*nnviz, spec, "-a", change, "-i", INPUT, "-o", str(b)],
        "diff": [*nnviz, "diff", str(a), str(b)],
        "draw": [*nnviz, str(a), "-o", str(svg)],
    }
    if html:
        steps["html"] = [*nnviz, str(a), "-o", str(svg.with_suffix(".html"))]
    row: dict[str, Any] = {"model": title or MODELS[name]}
    for step, command in steps.items():
        seconds, peak, ok, note, cpu = measure(command, folder)
        if not ok and step != "diff":  # diff exits 1: the snapshots differ, as they should
            raise SystemExit(f"{name}: {step} failed: {note}")
        row[step] = {"seconds": seconds, "cpu": cpu, "peak_mb": peak}
    document = json.loads(a.read_text())
    row["nodes"] = len(document["nodes"])
    row["params"] = next(m["params"] for m in document["modules"] if m["path"] == "")
    row["snapshot_mb"] = a.stat().st_size / 1e6
    if html:
        row["html_mb"] = svg.with_suffix(".html").stat().st_size / 1e6
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | params | nodes | trace s (CPU) | peak RSS above floor | snapshot MB | "
        "diff s (CPU) | draw s (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        above = r["trace"]["peak_mb"] - r["floor"]["peak_mb"]
        lines.append(
            f"| {r['model']} | {r['params'] / 1e9:.1f} B | {r['nodes']:,} | "
            f"{r['trace']['seconds']:.1f} ({r['trace']['cpu']:.1f}) | "
            f"{above:,.0f} MB (floor {r['floor']['peak_mb']:,.0f} MB) | {r['snapshot_mb']:.1f} | "
            f"{r['diff']['seconds']:.2f} ({r['diff']['cpu']:.2f}) | "
            f"{r['draw']['seconds']:.1f} ({r['draw']['cpu']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated factories.")
    parser.add_argument("--keep", type=Path, help="Keep snapshots and drawings in this folder.")
    parser.add_argument("--json", type=Path, help="Write the measurements here.")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [run_model(name, folder.resolve()) for name in options.models.split(",")]
    if options.json:
        options.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
