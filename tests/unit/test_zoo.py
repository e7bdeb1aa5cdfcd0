"""The zoo beyond torchvision: HF transformers from small configs and timm models.

Skipped when `transformers` / `timm` are not installed (`pip install -e .[zoo]`). Every model is
traced the way `nnviz MODEL -i ...` does it; the factories live in bench/zoo.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import nnviz
from nnviz.graph import Graph

trace = nnviz.trace
ZOO = Path(__file__).resolve().parents[2] / "bench" / "zoo.py"

HF = {
    "bert": ("input_ids:tensor1x16:int64", ["last_hidden_state", "pooler_output"]),
    "gpt2": ("input_ids:tensor1x16:int64", ["logits", "cache"]),
    "t5": (
        "input_ids:tensor1x16:int64;decoder_input_ids:tensor1x8:int64",
        ["last_hidden_state", "cache", "encoder_last_hidden_state"],
    ),
    "llama": ("input_ids:tensor1x16:int64", ["logits", "cache"]),
    "vit": ("pixel_values:image32", ["last_hidden_state", "pooler_output"]),
    "whisper": (
        "input_features:tensor1x80x200;decoder_input_ids:tensor1x4:int64",
        ["last_hidden_state", "cache", "encoder_last_hidden_state"],
    ),
}


def _quiet_trace(*args: object, **kwargs: object) -> Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trace(*args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(HF))
def test_hf_transformer_traces_eagerly(name: str) -> None:
    pytest.importorskip("transformers")
    inputs, outputs = HF[name]
    graph = _quiet_trace(f"{ZOO}:{name}", inputs=inputs)
    assert graph.meta["tracer"] == "eager"  # HF forwards defeat torch.fx
    spec = graph.node("output").spec
    assert [key for key, _ in spec["$dict"]] == outputs  # a ModelOutput, field by field
    fed = {e.slots[0] for e in graph.edges if e.target == "output"}
    assert f"0.{outputs[0]}" in fed
    assert all(n.spec is not None for n in graph.nodes if n.kind != "input")
    assert graph.meta["inputs"] is not None


def test_hf_attention_is_drawn_op_by_op() -> None:
    pytest.importorskip("transformers")
    graph = _quiet_trace(f"{ZOO}:llama", inputs=HF["llama"][0])
    scope = "model.layers.0.self_attn"
    ids = [n.id.removeprefix(scope + ".") for n in graph.nodes if n.scope == scope]
    # input_shape = hidden_states.shape[:-1]; q = self.q_proj(x).view(...).transpose(1, 2); ...
    assert ids[:7] == [
        "getattr",
        "getitem",
        "getitem:1",
        "getitem:2",
        "q_proj",
        "view",
        "transpose",
    ]
    assert graph.edge(f"{scope}.q_proj", f"{scope}.view").slots == ("self",)
    # view(*input_shape, -1, head_dim): the unpacked sizes feed the size argument
    assert graph.edge(f"{scope}.getitem:1", f"{scope}.view").slots == ("size.0",)
    assert graph.edge(f"{scope}.getitem:2", f"{scope}.view").slots == ("size.1",)
    assert graph.node(f"{scope}.o_proj").spec == {
        "$tensor": {"shape": [1, 16, 64], "dtype": "float32"}
    }


TIMM = {"resnet50": "fx", "vit_base_patch16_224": "fx", "maxvit_tiny_tf_224": "eager"}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_model(name: str) -> None:
    pytest.importorskip("timm")
    args = {"model_name": name, "pretrained": False}
    try:
        graph = _quiet_trace("timm:create_model", name=name, args=args)
    except nnviz.NNVizError as error:
        assert "-i" in str(error)
        graph = _quiet_trace("timm:create_model", name=name, args=args, inputs="default")
    assert graph.meta["tracer"] == TIMM[name]
    assert graph.total_params > 5_000_000
    assert graph.modules[""].cls.startswith("timm.models.")
