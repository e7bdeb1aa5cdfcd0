"""Today's mixture-of-experts LLMs from their published configs, traced on the meta device.

The factories below are MODEL specs (they need the `zoo` extra, for transformers):

    nnviz bench/moe.py:mixtral_8x22b -i input_ids:tensor1x16:int64 -o mixtral.json
    nnviz bench/moe.py:deepseek_v3 -i input_ids:tensor1x16:int64 -o deepseek-v3.svg
    nnviz bench/moe.py:qwen3_235b_a22b -i input_ids:tensor1x16:int64 -o qwen3.html

The config values are the architecture fields of each model's published `config.json`, written
out here (nothing is downloaded); `-a` overrides a field. Built under `torch.device("meta")`,
no weight is allocated; the experts' grouped matmul runs on meta too (`nnviz.tracers.lenient`).

    python bench/moe.py                   # the three models; a markdown table on stdout
    python bench/moe.py --models deepseek_v3 --keep out/

Each step is its own process (as in bench/llm.py): the floor, the trace to a snapshot, a second
trace with `moe_intermediate_size` (or `intermediate_size` for Mixtral) changed, `nnviz diff`,
the default drawing (`x.svg`) and the interactive page (`x.html`). The table also checks, with
torch and without nnviz, that the snapshot's parameter count is the model's and that every
expert, router and shared expert of every MoE layer is in the snapshot.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from llm import markdown, run_model  # noqa: E402

MIXTRAL_8X22B: dict[str, Any] = {
    "vocab_size": 32_768,
    "hidden_size": 6144,
    "intermediate_size": 16_384,
    "num_hidden_layers": 56,
    "num_attention_heads": 48,
    "num_key_value_heads": 8,
    "max_position_embeddings": 65_536,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "router_aux_loss_coef": 0.001,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
"""mistralai/Mixtral-8x22B-v0.1's config.json (architecture fields): 141 B parameters."""

DEEPSEEK_V3: dict[str, Any] = {
    "vocab_size": 129_280,
    "hidden_size": 7168,
    "intermediate_size": 18_432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_shared_experts": 1,
    "n_routed_experts": 256,
    "routed_scaling_factor": 2.5,
    "kv_lora_rank": 512,
    "q_lora_rank": 1536,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "qk_nope_head_dim": 128,
    "n_group": 8,
    "topk_group": 4,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "norm_topk_prob": True,
    "hidden_act": "silu",
    "max_position_embeddings": 163_840,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10_000.0,
    "rope_scaling": {
        "type": "yarn",
        "factor": 40,
        "original_max_position_embeddings": 4096,
        "beta_fast": 32,
        "beta_slow": 1,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
    },
    "attention_bias": False,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
}
"""deepseek-ai/DeepSeek-V3's config.json (architecture fields; transformers builds the 61 main
layers, not the multi-token-prediction module): 671 B parameters."""

QWEN3_235B_A22B: dict[str, Any] = {
    "vocab_size": 151_936,
    "hidden_size": 4096,
    "intermediate_size": 12_288,
    "moe_intermediate_size": 1536,
    "num_hidden_layers": 94,
    "num_attention_heads": 64,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "norm_topk_prob": True,
    "max_position_embeddings": 40_960,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "use_sliding_window": False,
    "router_aux_loss_coef": 0.001,
    "tie_word_embeddings": False,
    "bos_token_id": 151_643,
    "eos_token_id": 151_645,
}
"""Qwen/Qwen3-235B-A22B's config.json (architecture fields): 235 B parameters."""


def mixtral_8x22b(**overrides: Any) -> Any:
    """Mixtral-8x22B: 56 layers, 8 experts per layer (2 per token), hidden 6144."""
    from transformers import MixtralConfig, MixtralForCausalLM

    return MixtralForCausalLM(MixtralConfig(**{**MIXTRAL_8X22B, **overrides}))


def deepseek_v3(**overrides: Any) -> Any:
    """DeepSeek-V3: 61 layers (3 dense), 256 routed experts + 1 shared per MoE layer, MLA."""
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    return DeepseekV3ForCausalLM(DeepseekV3Config(**{**DEEPSEEK_V3, **overrides}))


def qwen3_235b_a22b(**overrides: Any) -> Any:
    """Qwen3-235B-A22B: 94 layers, 128 experts per layer (8 per token), hidden 4096."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    return Qwen3MoeForCausalLM(Qwen3MoeConfig(**{**QWEN3_235B_A22B, **overrides}))


MODELS = {
    "mixtral_8x22b": ("Mixtral-8x22B", "intermediate_size=16000"),
    "deepseek_v3": ("DeepSeek-V3", "moe_intermediate_size=2304"),
    "qwen3_235b_a22b": ("Qwen3-235B-A22B", "moe_intermediate_size=1664"),
}
"""Title, and the second snapshot's one change (every expert's width)."""


def ground_truth(name: str, snapshot: Path) -> dict[str, Any]:
    """What torch says of the meta model (parameters; experts, routers and shared experts per
    MoE layer), and how much of it the snapshot records."""
    import torch

    with torch.device("meta"):
        model = globals()[name]()
    modules = {m["path"]: m for m in json.loads(snapshot.read_text())["modules"]}
    truth: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters())}
    counts = {key: [0, 0] for key in ("experts", "routers", "shared")}  # [torch, snapshot]
    for path, module in model.named_modules():
        kind = type(module).__name__
        if path.endswith(("shared_experts", "shared_expert")):
            key, number = "shared", 1
        elif kind.endswith("Experts"):  # fused experts: [experts, out, in] per weight
            key, number = "experts", {p.shape[0] for p in module.parameters(recurse=False)}.pop()
        elif kind.endswith("Router") or path.endswith(".gate"):
            key, number = "routers", 1
        else:
            continue
        counts[key][0] += number
        recorded = modules.get(path, {}).get("parameters", {})
        if key == "experts":  # the snapshot's own shapes say how many experts it holds
            number = min((shape[0] for shape in recorded.values()), default=0)
        counts[key][1] += number if path in modules else 0
    truth.update(counts)
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated factories.")
    parser.add_argument("--keep", type=Path, help="Keep snapshots and drawings in this folder.")
    parser.add_argument("--json", type=Path, help="Write the measurements here.")
    options = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = (options.keep or Path(scratch)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        for name in options.models.split(","):
            title, change = MODELS[name]
            row = run_model(name, folder, spec_file=HERE, title=title, change=change, html=True)
            row["truth"] = ground_truth(name, folder / f"{name}.json")
            rows.append(row)
    if options.json:
        options.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(markdown(rows))
    for r in rows:
        t = r["truth"]
        same = "equal" if t["params"] == r["params"] else f"DIFFERENT (torch: {t['params']:,})"
        print(
            f"{r['model']}: {r['params']:,} parameters in the snapshot, {same} to torch's count; "
            f"routed experts {t['experts'][1]:,} of {t['experts'][0]:,}, routers "
            f"{t['routers'][1]} of {t['routers'][0]}, shared experts {t['shared'][1]} of "
            f"{t['shared'][0]} recorded; HTML page {r['html']['seconds']:.1f} s "
            f"({r['html']['cpu']:.1f} CPU), {r['html_mb']:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
