"""Mixture-of-experts models on meta (issue 27): traced without a CPU copy, every expert,
router and shared expert recorded, parameters as torch counts them, drawn as one group."""

from __future__ import annotations

from types import MappingProxyType

import pytest
import torch

import nnviz
from nnviz.experts import summary

INPUT = "input_ids:tensor1x8:int64"


def _deepseek() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")  # here: not every worker runs it
    config = transformers.DeepseekV3Config(
        vocab_size=256, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
        num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=4,
        num_key_value_heads=4, n_routed_experts=16, n_shared_experts=1, num_experts_per_tok=4,
        n_group=4, topk_group=2, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
        v_head_dim=16, qk_nope_head_dim=16,
    )  # fmt: skip
    with torch.device("meta"):
        return transformers.DeepseekV3ForCausalLM(config)


def _mixtral() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2,
    )  # fmt: skip
    with torch.device("meta"):
        return transformers.MixtralForCausalLM(config)


@pytest.fixture(scope="module")
def deepseek() -> tuple[torch.nn.Module, nnviz.Graph]:
    model = _deepseek()
    # memory_limit=0: any CPU copy would be refused, so this ran on meta throughout
    return model, nnviz.trace(model, inputs=INPUT, tracer="eager", memory_limit=0)


def test_every_expert_router_and_shared_expert_is_recorded_on_meta(deepseek):
    model, graph = deepseek
    assert graph.modules[""].params == sum(p.numel() for p in model.parameters())
    for index in (1, 2):  # layer 0 is dense (first_k_dense_replace=1)
        block = f"model.layers.{index}.mlp"
        experts = graph.modules[f"{block}.experts"]
        assert {shape[0] for shape in experts.parameters.values()} == {16}
        assert f"{block}.gate" in graph.modules and f"{block}.shared_experts" in graph.modules
        ops = {n.op for n in graph.nodes if n.scope.startswith(f"{block}.experts")}
        assert "torch._grouped_mm" in ops  # the experts' matmul ran on meta, in float32
        grouped = [n for n in graph.nodes if n.op == "torch._grouped_mm" and block in n.id]
        assert all(n.spec["$tensor"]["dtype"] == "float32" for n in grouped)


def test_the_drawing_says_experts_router_and_shared_expert(deepseek, tmp_path):
    _, graph = deepseek
    assert summary(graph, "model.layers") == "2 MoE blocks: experts ×16 · router · shared expert"
    assert summary(graph, "model.layers.1.mlp") == "experts ×16 · router · shared expert"
    assert summary(graph, "model.layers.1.mlp.experts") == "experts ×16"
    assert summary(graph, "model.layers.0") is None
    svg = nnviz.draw(graph, tmp_path / "d.svg")  # the default drawing: layers collapsed
    assert "2 MoE blocks: experts ×16 · router · shared expert" in svg.read_text()


class _DenseMoE(torch.nn.Module):
    """Experts as a list of modules (a soft mixture: every expert runs, weighted)."""

    def __init__(self, width: int = 16, count: int = 4) -> None:
        super().__init__()
        self.router = torch.nn.Linear(width, count)
        self.experts = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.router(x).softmax(-1)
        outputs = torch.stack([expert(x) for expert in self.experts], -1)
        return (outputs * weights.unsqueeze(-2)).sum(-1)


def test_a_list_of_experts_is_one_group_too():
    model = torch.nn.Sequential(_DenseMoE(), _DenseMoE())
    graph = nnviz.trace(model, inputs="tensor2x16")
    assert summary(graph, "") == "2 MoE blocks: experts ×4 · router"
    assert summary(graph, "0.experts") == "experts ×4"


def test_mixtral_on_meta_and_its_snapshot():
    model = _mixtral()
    graph = nnviz.trace(model, inputs=INPUT, tracer="eager", memory_limit=0)
    assert summary(graph, "model.layers") == "2 MoE blocks: experts ×8 · router"
    loaded = nnviz.snapshot.loads(nnviz.snapshot.dumps(graph))
    assert loaded == graph
    # specs stay plain values (a drawing prints them), args are read-only
    assert not any(isinstance(n.spec, MappingProxyType) for n in loaded.nodes)
    assert all(isinstance(n.args, MappingProxyType) for n in loaded.nodes)
