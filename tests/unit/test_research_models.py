"""Research-code models (tests/models/research.py): every tracer records the model it was given.

One small model per class of tracer bug: @staticmethod forwards, a forward that reassigns a
buffer, meta/CPU mixing, `.item()`, `**kwargs`, lazy modules, TorchScript, tensor constants,
container inputs, device reads, Tensor methods with default arguments, an HF model from a small
config. Each goes through the real command (in-process): with `-i`, without, under both tracers
where both apply, reloaded byte-identical, diffed against itself.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from support import REPO

import nnviz
from nnviz import snapshot
from nnviz.cli import cli
from nnviz.errors import TraceError
from nnviz.graph import Graph

RESEARCH = REPO / "tests" / "models" / "research.py"
sys.path.insert(0, str(RESEARCH.parent))
import research  # noqa: E402

trace = nnviz.trace

BOTH = [
    "StaticForward1",
    "StaticForward3",
    "BufferAssign",
    "MetaCpuMix",
    "KwargsForward",
    "Lazy",
    "TensorConstants",
    "ContainerInputs",
    "DeviceRead",
    "DefaultArguments",
]
"""Models torch.fx and the eager tracer both trace (to the same graph)."""
EAGER_ONLY = ["ItemInForward", "KwargsPassThrough", "hf_bert"]
SCRIPT = ["jit_traced", "jit_scripted"]
ALL = BOTH + EAGER_ONLY + SCRIPT

WITHOUT_INPUT = {
    "ItemInForward": "torch.fx cannot trace ItemInForward",
    "KwargsPassThrough": "torch.fx cannot trace KwargsPassThrough",
    "hf_bert": "torch.fx cannot trace hf_bert",
    "Lazy": "Lazy has lazy modules (conv, fc) whose parameters only a forward pass creates",
}
"""What `nnviz MODEL` says without `-i` when it cannot draw the model; all others are drawn."""


def _spec(name: str) -> str:
    return f"{RESEARCH}:{name}"


@functools.cache
def _graph(name: str, tracer: str) -> Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trace(_spec(name), inputs=research.INPUTS[name], tracer=tracer)


def _document(graph: Graph) -> dict[str, Any]:
    document = json.loads(snapshot.dumps(graph))
    document["meta"].pop("tracer")
    return document


def _run(*args: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", BOTH)
def test_fx_and_eager_give_the_same_graph(name: str) -> None:
    fx_graph, eager_graph = _graph(name, "fx"), _graph(name, "eager")
    assert (fx_graph.meta["tracer"], eager_graph.meta["tracer"]) == ("fx", "eager")
    assert _document(fx_graph) == _document(eager_graph)
    assert all(n.spec is not None for n in fx_graph.nodes)  # shapes everywhere, **kwargs too


@pytest.mark.parametrize("name", ALL)
def test_the_command_writes_reloads_and_diffs_each_model(name: str, tmp_path: Path) -> None:
    first, again = tmp_path / "x.json", tmp_path / "y.json"
    result = _run(_spec(name), "-i", research.INPUTS[name], "-o", str(first))
    assert result.exit_code == 0, result.output
    text = first.read_text()
    # nothing of nnviz's own execution: no meta device, no fx proxy, no constant counter
    assert "meta" not in text.replace('"meta":', "")
    assert "Proxy" not in text and "_tensor_constant" not in text
    assert _run(str(first), "-o", str(again)).exit_code == 0
    assert again.read_bytes() == first.read_bytes()
    assert _run("diff", str(first), str(first)).exit_code == 0


@pytest.mark.parametrize("name", BOTH)
def test_the_command_gives_the_same_snapshot_with_either_tracer(name: str, tmp_path: Path) -> None:
    outputs = {t: tmp_path / f"{t}.json" for t in ("fx", "eager")}
    for tracer, out in outputs.items():
        inputs = research.INPUTS[name]
        result = _run(_spec(name), "-i", inputs, "--tracer", tracer, "-o", str(out))
        assert result.exit_code == 0, result.output
    assert _run("diff", str(outputs["fx"]), str(outputs["eager"])).exit_code == 0


@pytest.mark.parametrize("name", ALL)
def test_without_an_input_each_model_is_drawn_or_refused_for_its_real_cause(
    name: str, tmp_path: Path
) -> None:
    out = tmp_path / "n.json"
    result = _run(_spec(name), "-o", str(out))
    expected = WITHOUT_INPUT.get(name)
    if expected is None:
        assert result.exit_code == 0, result.output
        assert out.is_file()
    else:
        assert result.exit_code == 2
        assert expected in result.output and "-i" in result.output
        assert not out.exists()


def _state(model: torch.nn.Module) -> list[Any]:
    """Everything tracing could change: every module's class, attributes (by identity),
    parameters, buffers, submodules and training flag, and the state_dict keys."""
    found: list[Any] = [sorted(model.state_dict())]
    for path, module in model.named_modules():
        found.append((path, type(module), module.training))
        found.append({k: (type(v), id(v)) for k, v in vars(module).items()})
        for inner in ("_parameters", "_buffers", "_modules"):
            found.append({k: id(v) for k, v in vars(module)[inner].items()})
    return found


@pytest.mark.parametrize("tracer", ["fx", "eager", "auto"])
@pytest.mark.parametrize("name", ["BufferAssign", "Lazy", "TensorConstants", "MetaCpuMix"])
def test_tracing_leaves_the_model_as_given(name: str, tracer: str) -> None:
    model = getattr(research, name)()
    if name != "Lazy":
        model = model.to("meta")
    model.train()
    before = _state(model)
    graph = trace(model, name=name, inputs=research.INPUTS[name], tracer=tracer)
    assert _state(model) == before
    assert "Proxy" not in snapshot.dumps(graph)


def test_static_forwards_record_their_real_inputs() -> None:
    for name, inputs in (("StaticForward1", ["x"]), ("StaticForward3", ["a", "b", "c"])):
        graph = trace(_spec(name))  # fx, without running it
        assert [n.op for n in graph.nodes if n.kind == "input"] == inputs
        assert all("$attr" not in json.dumps(dict(n.args)) for n in graph.nodes)
    graph = _graph("StaticForward3", "fx")
    assert graph.edge("input:a", "mul").slots == ("0",)


def test_a_graph_whose_inputs_are_not_forwards_arguments_is_refused() -> None:
    from nnviz.tracers.pristine import check_inputs

    graph = _graph("StaticForward3", "fx")

    def forward(a: Any, b: Any) -> Any: ...

    with pytest.raises(TraceError, match=r"inputs \(a, b, c\) that are not forward\(\)'s"):
        check_inputs(graph, forward, "m")


def test_a_proxy_left_in_a_model_is_refused() -> None:
    model = research.BufferAssign()
    torch.fx.symbolic_trace(model)  # torch.fx itself leaves a Proxy in `model.last`
    assert isinstance(model.last, torch.fx.Proxy)
    with pytest.raises(TraceError, match=r"holds a torch\.fx Proxy"):
        nnviz.tracers.conventions.encode(model.last)


def test_container_inputs_and_kwargs_are_indexed_as_fx_does() -> None:
    graph = _graph("ContainerInputs", "eager")
    assert graph.node("getitem").args == {"1": 0}  # first, second = pair
    assert graph.edge("input:pair", "getitem").slots == ("0",)
    assert graph.node("getitem:3").args == {"1": "scale"}  # extra["scale"]
    kwargs = _graph("KwargsForward", "eager")
    assert kwargs.edge("input:kwargs", "getitem").slots == ("0",)
    assert kwargs.edge("getitem", "lin").slots == ("input",)


def test_device_reads_are_the_models_device_and_edges() -> None:
    graph = _graph("DeviceRead", "eager")
    assert graph.edge("getattr:1", "arange").slots == ("device",)
    assert graph.node("getattr:1").spec == {"$device": "model"}
    assert graph.edge("getattr:2", "zeros").slots == ("device",)
    cpu_run = _graph("ItemInForward", "eager")  # `.item()`: run on a CPU build
    reads = [n for n in cpu_run.nodes if n.op == "getattr"]
    assert [n.spec for n in reads] == [{"$device": "model"}]
    assert "cpu" not in snapshot.dumps(cpu_run).replace('"torch":', "")


def test_default_arguments_are_recorded_as_written() -> None:
    graph = _graph("DefaultArguments", "eager")
    assert graph.node("norm").args == {}
    assert graph.node("split").args == {"split_size": 4, "dim": -1}
    assert (graph.node("unflatten").kind, graph.node("unflatten").op) == ("method", "unflatten")


def test_tensor_constants_are_recorded_by_what_they_are() -> None:
    graph = _graph("TensorConstants", "eager")
    assert graph.node("matmul").args == {"1": {"$repr": "tensor[4, 4]"}}
    assert graph.node("add").args == {"1": {"$repr": "tensor[4]"}}


def test_lazy_modules_are_initialised_on_a_copy() -> None:
    graph = _graph("Lazy", "fx")
    assert graph.modules["fc"].parameters == {"weight": (5, 144), "bias": (5,)}
    model = research.Lazy()
    trace(model, inputs="image8")
    assert type(model.fc) is torch.nn.LazyLinear  # the user's model stays lazy


@pytest.mark.parametrize("name", SCRIPT)
def test_torchscript_modules_are_drawn_from_their_graph(name: str) -> None:
    graph = _graph(name, "auto")
    assert graph.meta["tracer"] == "torchscript"
    assert [n.id for n in graph.nodes] == ["input:x", "conv", "act", "mean", "fc", "output"]
    assert graph.modules["conv"].cls == "torch.nn.Conv2d"
    assert graph.modules["conv"].parameters == {"weight": (4, 3, 3, 3), "bias": (4,)}
    assert graph.edge("mean", "fc").slots == ("0",)


def test_torchscript_blocks_are_scopes_with_their_own_ops() -> None:
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.jit.script(torchvision.models.resnet18(weights=None).eval())
    graph = trace(model, name="resnet18")
    fx_ids = [n.id for n in trace("resnet18").nodes]
    assert [n.id for n in graph.nodes] == fx_ids  # the same nodes as torch.fx gives
    assert graph.node("layer1.0.conv1").op == "torch.nn.Conv2d"
    assert graph.edge("layer1.0.bn2", "layer1.0.add").slots == ("0",)
