"""Cost in the snapshot: MACs from torch's formulas, output bytes, ops without a formula listed,
both tracers alike, older snapshots unknown in one line (nnviz/costs.py, nnviz/tracers/cost.py)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import nnviz
from nnviz import costs, snapshot
from nnviz.render.style import make_style


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8 * 30 * 30, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return self.head(y.flatten(1))


@pytest.mark.parametrize("tracer", ["fx", "eager"])
def test_macs_by_hand_and_output_bytes_by_dtype(tracer: str) -> None:
    graph = nnviz.trace(Small(), inputs="image32", tracer=tracer)
    conv, head = graph.node("conv").cost, graph.node("head").cost
    assert conv is not None and head is not None
    assert conv["macs"] == 8 * 3 * 3 * 3 * 30 * 30  # filters × channels × kernel × outputs
    assert head["macs"] == 8 * 30 * 30 * 10
    assert conv["out_bytes"] == 8 * 30 * 30 * 4  # float32
    assert graph.node("flatten").cost == {"macs": 0, "out_bytes": 0}  # a view: no new memory
    assert graph.node("relu").cost == {"macs": 0, "out_bytes": 8 * 30 * 30 * 4}  # the rule
    half = nnviz.trace(Small().half(), inputs="image32:float16", tracer=tracer)
    assert half.node("conv").cost == {**conv, "out_bytes": conv["out_bytes"] // 2}
    total = costs.total(graph)
    assert total.macs == conv["macs"] + head["macs"] and total.flops == 2 * total.macs
    assert costs.per_module(graph)[""] == total


def test_both_tracers_give_the_same_costs() -> None:
    import torchvision

    model = torchvision.models.mobilenet_v3_small()
    fx = nnviz.trace(model, inputs="image64", tracer="fx")
    eager = nnviz.trace(model, inputs="image64", tracer="eager")
    assert {n.id: n.cost for n in fx.nodes} == {n.id: n.cost for n in eager.nodes}


@torch.library.custom_op("nnviz_test::my_op", mutates_args=())
def my_op(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@my_op.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Custom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = my_op(x)
        return x


def test_an_op_without_a_formula_is_listed_never_silently_zero() -> None:
    total = costs.total(nnviz.trace(Custom(), inputs="tensor4x4", tracer="eager"))
    assert total.uncounted == {"nnviz_test.my_op": 3}
    assert costs.summary(total).endswith("not counted: 3 ops (nnviz_test.my_op ×3)")


def test_an_older_snapshot_loads_and_diffs_with_cost_unknown_in_one_line() -> None:
    new = nnviz.trace(Small(), inputs="image32")
    doc = json.loads(snapshot.dumps(new))
    for node in doc["nodes"]:
        node.pop("cost", None)
    old = snapshot.loads(json.dumps({**doc, "version": 3}))
    assert not costs.total(old).known
    text = nnviz.diff(old, new).to_text()
    unknown = [line for line in text.splitlines() if line.startswith("cost unknown")]
    assert unknown == [
        "cost unknown on the old side (format 3): re-record it with example inputs "
        "(nnviz MODEL -i ... -o model.json, or nnviz_snapshot(model, inputs=...) and "
        "pytest --nnviz-update)"
    ]


def test_a_cost_move_without_a_structure_change_is_reported() -> None:
    old = nnviz.trace(Small(), inputs="image32")
    # as a snapshot recorded where the conv counted twice the MACs (the same network)
    new = snapshot.loads(snapshot.dumps(old).replace('"macs":194400,', '"macs":388800,'))
    diff = nnviz.diff(old, new)
    assert diff.identical
    assert "compute 266 KMACs → 461 KMACs (+73.0%)" in diff.to_text()
    assert diff.to_dict()["cost"]["new"]["macs"] == 388_800 + 72_000


def test_the_drawing_labels_compute_and_its_share_and_a_style_key_turns_it_off() -> None:
    from nnviz.render.dot import shown_graph, to_dot

    graph = nnviz.trace(Small(), inputs="image32")
    dot = to_dot(shown_graph(graph, make_style(None), depth=1), make_style(None))
    assert "params 224 (0.3%) · 194 KMACs (73%)" in dot  # 194,400 of 266,400 MACs
    assert "266 KMACs · activations" in dot  # the title's totals
    off = make_style({"show_node_cost": False})
    assert "KMACs (" not in to_dot(shown_graph(graph, off, depth=1), off)
    # a collapsed module carries the sum of what it ran
    nested = nnviz.trace(nn.Sequential(Small()), inputs="image32")
    collapsed = shown_graph(nested, make_style(None), depth=1)
    assert costs.total(collapsed).macs == costs.total(nested).macs == 266_400


def test_the_text_table_has_a_row_per_module_with_shape_params_macs_and_activations() -> None:
    from nnviz.render.table import summary

    text = summary(nnviz.trace(Small(), inputs="image32"), depth=1)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[4:6]}
    assert rows["conv"][2:] == ["[1,", "8,", "30,", "30]", "224", "194", "KMACs", "28.1", "KiB"]
    assert rows["head"][2:] == ["[1,", "10]", "72,010", "72.0", "KMACs", "40", "B"]
    assert "Total MACs: 266,400 (266 KMACs; FLOPs = 2 × MACs)" in text


def test_the_table_prints_from_a_snapshot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from support import run_nnviz

    path = snapshot.save(nnviz.trace(Small(), inputs="image32"), tmp_path / "small.json")
    done = run_nnviz(str(path), "-d", "1", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert "conv (Conv2d)   [1, 8, 30, 30]     224   194 KMACs     28.1 KiB" in done.stdout
    assert done.stdout.endswith("Inputs: x=[1, 3, 32, 32]\n")


class Experts(nn.Module):
    """A mixture of experts' grouped matmul: rows sorted by expert, `offsets` where each
    expert's rows end (2 rows for expert 0, none for expert 1, 5 for expert 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 16, 8))
        self.register_buffer("offsets", torch.tensor([2, 2, 7], dtype=torch.int32), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch._grouped_mm(x, self.weight, offs=self.offsets)


@pytest.mark.parametrize("tracer", ["fx", "eager"])
def test_a_grouped_matmul_costs_the_sum_over_its_groups(tracer: str) -> None:
    """Σ_g m_g·k·n, by hand; on meta (float32 experts, `nnviz.tracers.lenient`) as on the CPU."""
    graph = nnviz.trace(Experts(), inputs="tensor7x16", tracer=tracer)
    (node,) = [n for n in graph.nodes if n.op == "torch._grouped_mm"]
    assert node.cost is not None
    assert node.cost["macs"] == 2 * 16 * 8 + 0 * 16 * 8 + 5 * 16 * 8
    assert not costs.total(graph).uncounted


def _product_ops() -> list[tuple[str, object, tuple[torch.Tensor, ...], int]]:
    """aten products torch's registry has no formula for, each with its MACs by hand."""
    a, b = torch.randn(3, 5), torch.randn(5, 4)
    q = torch.randn(1, 2, 4, 8)  # batch, heads, tokens, width: q·kᵀ and attn·v, 4·4·8 each
    int8 = torch.randint(-3, 3, (32, 32), dtype=torch.int8)
    return [
        ("dot", torch.dot, (torch.randn(5), torch.randn(5)), 5),
        ("mv", torch.mv, (a, torch.randn(5)), 15),
        (
            "addbmm",
            torch.addbmm,
            (torch.randn(3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4)),
            120,
        ),
        ("addmm_", torch.Tensor.addmm_, (torch.randn(3, 4), a, b), 60),
        ("sdpa", nn.functional.scaled_dot_product_attention, (q, q, q), 2 * 2 * 4 * 4 * 8),
        ("_int_mm", torch._int_mm, (int8, int8), 32**3),
    ]


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize(
    ("name", "op", "args", "macs"), _product_ops(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_products_without_a_torch_formula_count_the_same_on_meta_and_cpu(
    device: str, name: str, op: object, args: tuple[torch.Tensor, ...], macs: int
) -> None:
    """Each in-place variant and CPU kernel reaches its formula: none is silently 0."""
    from nnviz.tracers.cost import Counter

    if device == "meta" and name == "_int_mm":
        pytest.skip("no meta kernel")
    with Counter() as counter:
        op(*(t.to(device) for t in args))  # type: ignore[operator]
    assert counter.take() == (macs, {})


def test_products_with_no_formula_at_all_are_listed_never_zero() -> None:
    """Every aten op whose name says it multiplies matrices has a formula, decomposes into ops
    that do, or is listed as not counted (quantised, sparse and fused kernels)."""
    import re

    from nnviz.tracers.cost import _plan

    aten = torch.ops.aten
    zero = []
    for name in dir(aten):
        products = r"(^|_)(add|badd|b)?mm(_|\d|$)|matmul|gemm|attention|conv|(^|_)linear"
        if not re.search(products, name) or "upsample" in name:
            continue
        packet = getattr(aten, name)
        overloads = packet.overloads() if hasattr(packet, "overloads") else []
        if overloads and _plan(getattr(packet, overloads[0]))[0] == "zero":
            zero.append(name)
    assert [n for n in zero if "int4pack" not in n] == []  # converting weights computes nothing


def _mlp_blocks(hidden: int) -> nn.Module:
    return nn.Sequential(
        *(nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 8)) for _ in range(3))
    )


def test_a_grouped_line_says_its_figure_is_each_places_in_every_rendering() -> None:
    """Three blocks widened alike are one `×3` line: its figure is each place's, said so in the
    text, the markdown and the HTML page's list; the JSON item holds each place's and all."""
    from nnviz.diffing.changelog import listing

    old = nnviz.trace(_mlp_blocks(16), inputs="tensor1x8")
    diff = nnviz.diff(old, nnviz.trace(_mlp_blocks(32), inputs="tensor1x8"))
    each = (
        "+128 MACs, +64 B activations each"  # Linear(8, 16) -> (8, 32): 8·16 more MACs, 16 floats
    )
    line = f"~ {{0..2}}.0  Linear  out_features 16 → 32 ×3 · {each}"
    assert line in diff.to_text().splitlines()
    assert line in diff.to_markdown()
    listed = next(item for item in listing(diff.changelog()) if item.name == "{0..2}.0 ×3")
    assert f"cost {each}" in listed.lines
    (item,) = [i for i in diff.to_dict()["changelog"]["items"] if i["pattern"] == "{0..2}.0"]
    assert item["count"] == 3
    assert item["cost"]["each"]["macs"] == {"old": 8 * 16, "new": 8 * 32}
    assert item["cost"]["all"]["macs"] == {"old": 3 * 8 * 16, "new": 3 * 8 * 32}
    assert item["cost"]["all"]["activation_bytes"] == {"old": 3 * 16 * 4, "new": 3 * 32 * 4}
