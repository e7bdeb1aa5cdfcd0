"""The eager tracer: same graphs as torch.fx where both work, and graphs where fx cannot trace."""

from __future__ import annotations

import functools
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from support import run_nnviz
from torch import nn

import nnviz
from nnviz import TracerWarning, snapshot
from nnviz.errors import TraceError
from nnviz.graph import Graph

trace = nnviz.trace  # bound once: importing a tracer module must not shadow the function


@functools.cache
def _traced(name: str, tracer: str) -> Graph:
    return trace(name, inputs="default", tracer=tracer)


def _document(graph: Graph) -> dict[str, object]:
    """The snapshot as JSON, without the tracer that made it."""
    document = json.loads(snapshot.dumps(graph))
    document["meta"].pop("tracer")
    return document


def _assert_same_but_tracer(fx_graph: Graph, eager_graph: Graph) -> None:
    assert fx_graph.meta["tracer"] == "fx"
    assert eager_graph.meta["tracer"] == "eager"
    fx_doc, eager_doc = _document(fx_graph), _document(eager_graph)
    assert [n["id"] for n in eager_doc["nodes"]] == [n["id"] for n in fx_doc["nodes"]]
    assert eager_doc == fx_doc


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "convnext_tiny", "vit_b_16"])
def test_fx_and_eager_snapshots_differ_only_in_the_tracer(name: str) -> None:
    fx_graph, eager_graph = _traced(name, "fx"), _traced(name, "eager")
    _assert_same_but_tracer(fx_graph, eager_graph)
    assert eager_graph.node("output").spec == {"$tensor": {"shape": [1, 1000], "dtype": "float32"}}


def test_vit_shape_arithmetic_and_unpacking_are_recorded() -> None:
    graph = _traced("vit_b_16", "eager")
    # n, c, h, w = x.shape; n_h = h // p: the unused `c` and the asserts are gone, as with fx
    assert [graph.node(i).op for i in ("getattr", "getitem", "getitem:1", "floordiv")] == [
        "getattr",
        "operator.getitem",
        "operator.getitem",
        "operator.floordiv",
    ]
    assert graph.node("getattr").spec == {"$tuple": [1, 3, 224, 224]}
    assert graph.edge("getitem", "reshape").slots == ("shape.0",)
    assert graph.node("expand").args["self"] == {"$attr": "class_token"}
    attention = "encoder.layers.encoder_layer_0.self_attention"
    assert graph.edge("encoder.layers.encoder_layer_0.ln_1", attention).slots == (
        "query",
        "key",
        "value",
    )
    assert graph.successors(attention) == ["encoder.layers.encoder_layer_0.getitem"]


# --- a small hand-written transformer and a model full of Python-level quirks --------------------


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.size()
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att + torch.full_like(att, float("-inf")).triu(1)
        att = self.drop(F.softmax(att, dim=-1))
        return self.proj((att @ v).transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc = nn.Linear(dim, 4 * dim)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        h = self.ln_2(x)
        a, _ = self.mha(h, h, h, need_weights=False)
        x = x + a
        return x + self.out(F.gelu(self.fc(x)))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 32, heads: int = 4, context: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, context, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(2))
        layer = nn.TransformerEncoderLayer(dim, heads, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos[:, :t, :]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(self.encoder(x)))


def test_small_transformer_gives_the_same_snapshot() -> None:
    with torch.device("meta"):
        model = TinyGPT()
    fx_graph = trace(model, name="tiny", inputs="tensor2x10:int64", tracer="fx")
    eager_graph = trace(model, name="tiny", inputs="tensor2x10:int64", tracer="eager")
    _assert_same_but_tracer(fx_graph, eager_graph)
    # `q, k, v = ....split(...)` is three getitems; math.sqrt on a size is recorded like fx does
    assert eager_graph.node("blocks.0.attn.sqrt").op == "math.sqrt"
    assert eager_graph.successors("blocks.0.attn.split") == [
        "blocks.0.attn.getitem:3",
        "blocks.0.attn.getitem:4",
        "blocks.0.attn.getitem:5",
    ]
    assert eager_graph.node("output").spec == {
        "$tensor": {"shape": [2, 10, 50], "dtype": "float32"}
    }


class Quirks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.relu = nn.ReLU(inplace=True)
        self.scale = nn.Parameter(torch.ones(8, 1, 1))
        self.register_buffer("shift", torch.zeros(8, 1, 1))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = self.drop(y)  # returns `y` itself in eval mode
        y = y + z
        y += 1
        y = 1 - y
        y = self.relu(y)  # in place
        y = y * self.scale + self.shift
        h, w = y.shape[-2:]
        y = F.adaptive_avg_pool2d(y, (h // 2, w // 2))
        y = y.flatten(2).max(dim=-1).values
        y = -y.abs()
        return self.head(y) @ torch.eye(4)


def test_operators_in_place_ops_and_constants_follow_fx() -> None:
    with torch.device("meta"):
        model = Quirks()
    fx_graph = trace(model, name="quirks", inputs="image16", tracer="fx")
    graph = trace(model, name="quirks", inputs="image16", tracer="eager")
    _assert_same_but_tracer(fx_graph, graph)
    # an op that hands back its input is still a new value: `y + z` has two distinct operands
    assert graph.edge("conv", "add").slots == ("0",)
    assert graph.edge("drop", "add").slots == ("1",)
    assert graph.node("add:1").op == "operator.add"  # `y += 1`, like fx
    assert dict(graph.node("sub").args) == {"0": 1}  # `1 - y` keeps its operand order
    assert dict(graph.node("mul").args) == {"1": {"$attr": "scale"}}
    assert dict(graph.node("add:2").args) == {"1": {"$attr": "shift"}}
    assert graph.edge("floordiv:1", "adaptive_avg_pool2d").slots == ("output_size.1",)
    assert graph.node("getattr:1").args["1"] == "values"
    assert graph.node("matmul").args["1"] == {"$repr": "tensor[4, 4]"}  # by what it is


# --- what fx cannot trace --------------------------------------------------------------------


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() >= 0:  # data-dependent: fx cannot, meta tensors cannot
            return self.a(x)
        return self.b(x)


def test_auto_falls_back_to_eager_with_a_note() -> None:
    with pytest.warns(TracerWarning, match=r"torch\.fx cannot trace branchy; recording it"):
        graph = trace(Branchy(), name="branchy", inputs="tensor2x4")
    assert graph.meta["tracer"] == "eager"
    assert [n.id for n in graph.nodes] == ["input:x", "abs", "sum", "ge", "a", "output"]
    assert graph.node("a").spec == {"$tensor": {"shape": [2, 4], "dtype": "float32"}}


def test_without_an_input_the_errors_suggest_one_in_python_and_cli_words() -> None:
    advice = r"pass an example input \(inputs=\.\.\. in Python, -i on the command line\)"
    with pytest.raises(TraceError, match=advice):
        trace(Branchy(), name="branchy")
    with pytest.raises(TraceError, match=r"the eager tracer runs branchy: " + advice):
        trace(Branchy(), name="branchy", tracer="eager")
    # With an input given, fx's failure points at the eager tracer, not at the input it has.
    with pytest.raises(TraceError, match=r"torch\.fx cannot trace branchy") as failed:
        trace(Branchy(), name="branchy", inputs="tensor2x4", tracer="fx")
    assert "example input" not in str(failed.value)
    assert "tracer='eager' in Python, --tracer eager on the command line" in str(failed.value)


def test_a_meta_model_that_needs_data_is_rebuilt_on_the_cpu(tmp_path: Path) -> None:
    source = tmp_path / "branchy.py"
    source.write_text(
        "from torch import nn\n"
        "class Branchy(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a = nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.a(x) if x.abs().sum().item() >= 0 else x\n"
    )
    graph = trace(f"{source}:Branchy", inputs="tensor3x4", tracer="eager")
    # the Python-level test `... .item() >= 0` steers control flow, which the graph does not show
    assert [n.id for n in graph.nodes] == ["input:x", "a", "output"]
    assert graph.modules["a"].parameters == {"weight": (4, 4), "bias": (4,)}


@dataclass
class Prediction:
    logits: torch.Tensor
    hidden: list[torch.Tensor]


class Structured(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, batch: dict[str, torch.Tensor], extra: list[torch.Tensor]) -> Prediction:
        h = self.lin(batch["x"]) + extra[0]
        return Prediction(logits=self.head(h), hidden=[h])


def test_dicts_lists_and_dataclasses_flow_through() -> None:
    inputs = {"batch": {"x": torch.randn(2, 4)}, "extra": [torch.randn(2, 8)]}
    graph = trace(Structured(), name="structured", inputs=inputs, tracer="eager")
    # indexing an input container is recorded, as fx records it on the input's proxy
    assert graph.edge("input:batch", "getitem").slots == ("0",)
    assert graph.node("getitem").args["1"] == "x"
    assert graph.edge("getitem", "lin").slots == ("input",)
    assert graph.edge("getitem:1", "add").slots == ("1",)
    assert graph.edge("head", "output").slots == ("0.logits",)
    assert graph.edge("add", "output").slots == ("0.hidden.0",)
    tensor = {"$tensor": {"shape": [2, 8], "dtype": "float32"}}
    assert graph.node("output").spec == {
        "$dict": [
            ["logits", {"$tensor": {"shape": [2, 3], "dtype": "float32"}}],
            ["hidden", [tensor]],
        ]
    }
    assert graph.meta["inputs"]["extra"] == [tensor]


class Pair(NamedTuple):
    first: torch.Tensor
    second: torch.Tensor


class Paired(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> Pair:
        return Pair(self.lin(x), x * 2)


def test_namedtuple_outputs_are_read_by_field() -> None:
    graph = trace(Paired(), name="paired", inputs="tensor1x2", tracer="eager")
    assert graph.edge("lin", "output").slots == ("0.first",)
    assert graph.edge("mul", "output").slots == ("0.second",)


def test_detection_model_traces_with_its_family_example() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = trace("fasterrcnn_mobilenet_v3_large_320_fpn")
    notes = [str(w.message) for w in caught if issubclass(w.category, TracerWarning)]
    assert notes == [
        "torch.fx cannot trace fasterrcnn_mobilenet_v3_large_320_fpn; recording it by running "
        "it on the example input [torch.randn(3, 224, 224)] (eager tracer)"
    ]
    assert graph.meta["tracer"] == "eager"
    assert graph.meta["inputs"]["images"] == [
        {"$tensor": {"shape": [3, 224, 224], "dtype": "float32"}}
    ]
    into_output = {e.slots for e in graph.edges if e.target == "output"}
    assert into_output == {("0.0.boxes",), ("0.0.labels",), ("0.0.scores",)}
    assert graph.node("backbone.body.0.0").op == "torch.nn.Conv2d"
    # the batched image (an ImageList's tensor) feeds the backbone
    assert graph.predecessors("backbone.body.0.0")[0].startswith("transform.")


# --- the command line ------------------------------------------------------------------------


def test_cli_draws_raft_without_an_input(tmp_path: Path) -> None:
    done = run_nnviz("raft_small", "-o", "raft.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "nnviz: warning: torch.fx cannot trace raft_small; recording it by running it on the "
        "example input image1:image224;image2:image224 (eager tracer)"
    ]
    graph = nnviz.load(tmp_path / "raft.json")
    assert graph.meta["tracer"] == "eager"
    assert set(graph.meta["inputs"]) == {"image1", "image2", "num_flow_updates"}


def test_cli_tracer_option(tmp_path: Path) -> None:
    refused = run_nnviz("resnet18", "--tracer", "eager", "-o", "r.json", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "nnviz: error: the eager tracer runs resnet18: pass an example input (inputs=... in "
        "Python, -i on the command line), e.g. 'default'"
    )
    done = run_nnviz("resnet18", "--tracer", "eager", "-i", "default", "-o", "e.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    fx_text = snapshot.dumps(_traced("resnet18", "fx"))
    assert fx_text.replace('"tracer":"fx"', '"tracer":"eager"') == (tmp_path / "e.json").read_text()


def test_readme_tracer_section_stays_true() -> None:
    from nnviz.tracers.examples import EXAMPLES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Models torch.fx cannot trace", 1)[1].split("\n## ", 1)[0]
    for text in set(EXAMPLES.values()):
        assert f"`{text}`" in section
    for command in [line for line in section.splitlines() if line.startswith("nnviz ")]:
        for option in [word for word in command.split() if word.startswith("--")]:
            assert option in ("--tracer",), command
    assert "nnviz: warning: torch.fx cannot trace raft_small" in section.replace("\n  ", " ")
