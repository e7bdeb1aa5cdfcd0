"""Call arguments named by the callee's signature (`nnviz.tracers.binding`): the same call
written another way records the same way in both tracers; an older snapshot that records
arguments by position compares without false drift and says how to re-record it."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest
from support import run

import nnviz
from nnviz import snapshot
from nnviz.graph import Graph
from nnviz.render.dot import to_dot

MODELS = Path(__file__).parents[1] / "models"
sys.path.insert(0, str(MODELS))
import binding  # noqa: E402  (tests/models/binding.py, importable as the v2 snapshot names it)

IMAGE = "tensor1x3x8x8"


def trace(model: object, inputs: str = IMAGE, tracer: str = "fx") -> Graph:
    return nnviz.trace(model, name="head", inputs=inputs, tracer=tracer)


@pytest.mark.parametrize("tracer", ["fx", "eager"])
def test_keyword_and_positional_arguments_record_alike(tracer: str) -> None:
    positional = trace(binding.Head(), tracer=tracer)
    keywords = trace(binding.Head(keywords=True), tracer=tracer)
    flatten, linear = positional.node("flatten"), positional.node("linear")
    assert dict(flatten.args) == {"start_dim": 1}  # end_dim=-1 is its default
    assert dict(linear.args) == {"weight": {"$attr": "fc.weight"}, "bias": {"$attr": "fc.bias"}}
    assert positional.edge("conv", "flatten").slots == ("input",)
    assert positional.edge("input:x", "conv").slots == ("input",)  # a module's forward(input)
    assert [dict(n.args) for n in keywords] == [dict(n.args) for n in positional]
    assert positional.edges == keywords.edges
    assert nnviz.diff(positional, keywords, strict=True).identical


@pytest.mark.parametrize("tracer", ["fx", "eager"])
def test_a_list_or_a_tuple_of_sizes_is_one_argument(tracer: str) -> None:
    from torch import nn

    class Pool(nn.Module):
        def __init__(self, brackets: bool) -> None:
            super().__init__()
            self.brackets = brackets

        def forward(self, x):  # type: ignore[no-untyped-def]
            return x.mean([2, 3]) if self.brackets else x.mean((2, 3))

    lists, tuples = (trace(Pool(b), tracer=tracer) for b in (True, False))
    assert dict(lists.node("mean").args) == dict(tuples.node("mean").args)
    assert dict(lists.node("mean").args) == {"dim": {"$tuple": [2, 3]}}


def test_both_tracers_name_the_same_slots() -> None:
    fx, eager = trace(binding.Attention(False), "tensor1x4x16"), None
    eager = trace(binding.Attention(False), "tensor1x4x16", tracer="eager")
    assert [(n.id, dict(n.args)) for n in fx] == [(n.id, dict(n.args)) for n in eager]
    assert fx.edges == eager.edges
    view = fx.node("view")
    assert dict(view.args) == {"size.2": 2, "size.3": 8}  # x.view(b, n, 2, 8): b, n traced
    assert fx.edge("getitem", "view").slots == ("size.0",)


def test_the_label_names_the_parameter() -> None:
    dot = to_dot(trace(binding.Head()))
    assert "start_dim=1" in dot
    assert "arg1" not in dot


def test_the_interactive_page_names_the_parameter_an_input_feeds() -> None:
    from nnviz.render.htmlview import _node_info

    graph = trace(binding.Head())
    info = _node_info(graph, graph.node("flatten"))
    assert info["args"] == [["start_dim", "1"]]
    assert info["inputs"] == [["conv", "[1, 4, 6, 6]", "input"]]


def test_arange_from_zero_is_arange() -> None:
    explicit = trace(binding.Positions(True), "tensor2x5")
    implicit = trace(binding.Positions(False), "tensor2x5")
    assert dict(explicit.node("arange").args) == dict(implicit.node("arange").args) == {}
    assert explicit.edge("getitem", "arange").slots == ("end",)
    assert nnviz.diff(explicit, implicit, strict=True).identical


def test_attention_arguments_that_compute_their_default_are_the_default() -> None:
    """`scale=1/sqrt(E)` is what sdpa computes without a scale; `enable_gqa=True` with as many
    key heads as query heads groups nothing."""
    plain = trace(binding.Attention(False), "tensor1x4x16")
    spelled = trace(binding.Attention(True), "tensor1x4x16")
    sdpa = "scaled_dot_product_attention"
    assert dict(spelled.node(sdpa).args) == dict(plain.node(sdpa).args) == {}
    assert nnviz.diff(plain, spelled, strict=True).identical
    grouped = trace(binding.Attention(True, heads=2, kv_heads=1), "tensor1x4x16")
    assert dict(grouped.node(sdpa).args) == {"enable_gqa": True}  # 2 query heads, 1 key head


@pytest.mark.parametrize("tracer", ["fx", "eager"])
def test_pool_stride_of_its_kernel_and_zero_padding_are_the_defaults(tracer: str) -> None:
    spelled, plain = (trace(binding.Pools(s), tracer=tracer) for s in (True, False))
    args = [(n.op.rsplit(".", 1)[-1], dict(n.args)) for n in spelled if n.kind == "function"]
    assert args == [
        ("max_pool2d", {"kernel_size": 2}),
        ("avg_pool2d", {"kernel_size": 2}),
        ("pad", {"pad": {"$tuple": [1, 1]}}),
    ]
    assert [dict(n.args) for n in plain] == [dict(n.args) for n in spelled]
    assert nnviz.diff(plain, spelled, strict=True).identical


def test_softmax_over_its_implicit_dim_is_softmax_without_one() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch deprecates the implicit dim
        implicit = trace(binding.Softmax(None))
    for dim in (1, -3):
        spelled = trace(binding.Softmax(dim))
        assert dict(spelled.node("softmax").args) == {}
        assert nnviz.diff(implicit, spelled, strict=True).identical
    assert dict(trace(binding.Softmax(-1)).node("softmax").args) == {"dim": -1}


def test_an_argument_a_rule_does_not_cover_is_kept() -> None:
    from torch import nn
    from torch.nn import functional as F

    class Other(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return F.max_pool2d(x, 2, stride=1), F.pad(x, (1, 1, 1, 1), mode="reflect")

    graph = trace(Other())
    assert dict(graph.node("max_pool2d").args) == {"kernel_size": 2, "stride": 1}
    assert dict(graph.node("pad").args) == {"pad": {"$tuple": [1, 1, 1, 1]}, "mode": "reflect"}


def test_an_older_snapshot_compares_without_false_drift(tmp_path: Path) -> None:
    old = MODELS / "head-v2.json"  # binding.Head() recorded by format 2: {"1": 1}, slots "0"
    assert snapshot.load(old).meta[snapshot.MIGRATED] == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = nnviz.diff(old, trace(binding.Head(keywords=True)))
    assert same.identical and not caught  # same values under new names: nothing to say
    with pytest.warns(nnviz.NNVizWarning) as caught:
        moved = nnviz.diff(old, trace(binding.Head(start_dim=0)))
    assert [str(w.message) for w in caught] == [
        f"{old} is a format-2 snapshot: it records call arguments by position and no tied "
        "parameters, so those compared only where exact; re-record it (nnviz MODEL -o "
        "FILE.json, or pytest --nnviz-update)"
    ]
    assert not moved.identical  # flatten's output shape changed: drift whatever the format
    lines = moved.to_text().splitlines()
    assert "~ flatten  torch.flatten  output [1, 144] → [144]" in lines
    assert "older-format change" in lines[-1]
    assert nnviz.draw(snapshot.load(old), tmp_path / "old.svg").read_text().startswith("<")


def test_the_plugin_passes_an_older_snapshot_of_the_same_model_and_warns_on_drift(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(MODELS / "binding.py", pytester.path / "binding.py")
    pytester.makepyfile(
        test_old="""
        from binding import Head

        def test_head(nnviz_snapshot):
            nnviz_snapshot(Head(), inputs="tensor1x3x8x8", name="same")

        def test_moved(nnviz_snapshot):
            nnviz_snapshot(Head(start_dim=0), inputs="tensor1x3x8x8", name="moved")
        """
    )
    folder = pytester.path / "__nnviz_snapshots__" / "test_old"
    folder.mkdir(parents=True)
    for name in ("test_head.same", "test_moved.moved"):
        shutil.copy(MODELS / "head-v2.json", folder / f"{name}.json")
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       not drift (counted with --strict): 1 older-format change",
            "test_old.py::test_moved",
            "*NNVizWarning: head is a format-2 snapshot: it records call arguments by position*",
        ],
        consecutive=False,
    )
    assert "test_old.py::test_head" not in result.stdout.str()  # no warning: nothing lost
    result = run(pytester, "--nnviz-update")  # re-records both in the current format
    result.assert_outcomes(passed=2)
    for name in ("test_head.same", "test_moved.moved"):
        assert snapshot.MIGRATED not in snapshot.load(folder / f"{name}.json").meta


def test_sizes_given_whole_or_one_by_one_compare_item_by_item() -> None:
    """`x.view(x.size()[:-1] + (2, 8))` (transformers 4.46) is `x.view(b, n, -1, 8)` (5.x):
    the whole tuple is split by its recorded value and compared item by item."""
    from torch import nn

    def net(packed: bool, last: int = 8) -> nn.Module:
        class Heads(nn.Module):
            def forward(self, x):  # type: ignore[no-untyped-def]
                if packed:
                    return x.view(x.size()[:-1] + (16 // last, last))  # noqa: RUF005 (as HF)
                b, n, _ = x.shape
                return x.view(b, n, -1, last)

        return Heads()

    old = trace(net(True), "tensor1x4x16")
    same = nnviz.diff(old, trace(net(False), "tensor1x4x16"), strict=True)
    assert {e.name for e in same if e.status != "unchanged"} == {
        "getattr",
        "getitem",
        "add",
        "getitem:1",
    }
    assert all(e.info == "plumbing" or e.status != "changed" for e in same if e.name != "view")
    assert nnviz.diff(old, trace(net(False), "tensor1x4x16")).identical  # only the size arithmetic
    changed = nnviz.diff(old, trace(net(False, 4), "tensor1x4x16")).to_text()
    assert "~ view  view  arg size.2 2 → -1; arg size.3 8 → 4; output" in changed


def test_the_diff_compares_a_list_and_a_tuple_by_their_items() -> None:
    """Where no signature normalises them (a snapshot of an older format, an unknown callee),
    `[32, 64]` and `(32, 64)` are still the same argument; other items are not."""
    from nnviz.graph import Edge, Module, Node

    def graph(sizes: object) -> Graph:
        nodes = [Node("input:x", "input", "x"), Node("f", "function", "m.f", args={"1": sizes})]
        return Graph(nodes, [Edge("input:x", "f", ("0",))], [Module("", "m.M")], {"name": "g"})

    tuple_ = graph({"$tuple": [32, 64]})
    assert nnviz.diff(tuple_, graph([32, 64]), strict=True).identical
    assert not nnviz.diff(tuple_, graph([32, 65])).identical


def test_a_dim_counted_from_the_end_is_the_same_dim() -> None:
    """`x.mean((-2, -1))` is `x.mean((2, 3))` and `x.softmax(-1)` is `x.softmax(3)` on a 4-D
    input; `unsqueeze` counts the output's dims, so it is not covered, and another dim differs."""
    from torch import nn

    def net(dims: tuple[int, int], last: int) -> nn.Module:
        class Pool(nn.Module):
            def forward(self, x):  # type: ignore[no-untyped-def]
                return x.softmax(last).mean(dims)

        return Pool()

    old = trace(net((2, 3), 3))
    assert nnviz.diff(old, trace(net((-2, -1), -1)), strict=True).identical
    assert "arg dim (2, 3) → (1, 3)" in nnviz.diff(old, trace(net((1, 3), 3))).to_text()


def test_a_device_given_as_a_string_binds() -> None:
    """`torch.tensor([], dtype=x.dtype, device="cpu")` (transformers' cache code): the string
    fits the stub's `DeviceLikeType`, so the call is bound, its list a tuple."""
    import torch
    from torch import nn

    class Empty(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return x + torch.tensor([], dtype=x.dtype, device="cpu").sum()

    graph = trace(Empty(), "tensor2")
    assert dict(graph.node("tensor").args) == {"data": {"$tuple": []}, "device": "cpu"}
    assert graph.edge("getattr", "tensor").slots == ("dtype",)
