"""The `-i` input language: presets, key:value, dtype suffixes and the safe expression form,
and how parsed inputs bind to a model's forward() arguments."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import torch_blocker
from torch import nn

from nnviz.errors import InputSpecError
from nnviz.tracers.expression import DType, TorchCall
from nnviz.tracers.inputs import InputSpec, from_object, parse_inputs


def shapes(spec: InputSpec) -> tuple[list[object], dict[str, object]]:
    """The materialised inputs as (shape, dtype) pairs, positional and named."""
    args, kwargs = spec.materialise("meta")

    def show(value: object) -> object:
        if isinstance(value, torch.Tensor):
            return (list(value.shape), str(value.dtype).removeprefix("torch."))
        if isinstance(value, (list, tuple)):
            return type(value)(show(v) for v in value)
        if isinstance(value, dict):
            return {k: show(v) for k, v in value.items()}
        return value

    return [show(a) for a in args], {k: show(v) for k, v in kwargs.items()}


@pytest.mark.parametrize(
    ("text", "positional"),
    [
        ("default", [([1, 3, 224, 224], "float32")]),
        ("image64", [([1, 3, 64, 64], "float32")]),
        ("image241", [([1, 3, 241, 241], "float32")]),
        ("image32x48", [([1, 3, 32, 48], "float32")]),
        ("tensor30", [([30], "float32")]),
        ("tensor4x5x256", [([4, 5, 256], "float32")]),
        ("tensor1x16:int64", [([1, 16], "int64")]),
        ("tensor1x16:long", [([1, 16], "int64")]),
        ("tensor2x8:bool", [([2, 8], "bool")]),
        ("image32:float16", [([1, 3, 32, 32], "float16")]),
        ("  default  ", [([1, 3, 224, 224], "float32")]),
    ],
)
def test_presets_bind_to_the_first_argument(text: str, positional: list[object]) -> None:
    assert shapes(parse_inputs(text)) == (positional, {})


def test_integer_presets_are_valid_indices_and_bool_presets_are_true() -> None:
    (ids,), _ = parse_inputs("tensor1x16:int64").materialise("cpu")
    assert ids.dtype == torch.int64 and int(ids.abs().sum()) == 0
    (mask,), _ = parse_inputs("tensor2x3:bool").materialise("cpu")
    assert bool(mask.all())


def test_key_value_pairs_bind_by_name() -> None:
    spec = parse_inputs("x:image32; mask:tensor1x32:bool ;ids:tensor1x32:int64")
    assert spec.positional == ()
    assert shapes(spec) == (
        [],
        {
            "x": ([1, 3, 32, 32], "float32"),
            "mask": ([1, 32], "bool"),
            "ids": ([1, 32], "int64"),
        },
    )


def test_a_key_that_looks_like_a_preset_is_a_key() -> None:
    spec = parse_inputs("image1:tensor3;tensor2:default")
    assert [k for k, _ in spec.named] == ["image1", "tensor2"]
    assert shapes(spec)[1] == {"image1": ([3], "float32"), "tensor2": ([1, 3, 224, 224], "float32")}


def test_key_value_pairs_take_python_literals_for_other_arguments() -> None:
    spec = parse_inputs("x:image8;flag:True;steps:3;mode:'fast';scale:-0.5;none:None")
    assert shapes(spec)[1] == {
        "x": ([1, 3, 8, 8], "float32"),
        "flag": True,
        "steps": 3,
        "mode": "fast",
        "scale": -0.5,
        "none": None,
    }


def test_a_bare_value_and_named_values_mix() -> None:
    spec = parse_inputs("image16;y:tensor2")
    assert shapes(spec) == ([([1, 3, 16, 16], "float32")], {"y": ([2], "float32")})


def test_expression_form() -> None:
    spec = parse_inputs(
        '{"x": torch.randn(1, 3, 8, 8), "ids": torch.randint(0, 100, (1, 5), dtype=torch.long),'
        ' "pair": [torch.zeros(2), torch.ones(2, 2)], "n": -3, "scale": 0.5, "flag": None}'
    )
    assert shapes(spec) == (
        [],
        {
            "x": ([1, 3, 8, 8], "float32"),
            "ids": ([1, 5], "int64"),
            "pair": [([2], "float32"), ([2, 2], "float32")],
            "n": -3,
            "scale": 0.5,
            "flag": None,
        },
    )


def test_expression_tuple_binds_positionally_and_values_nest() -> None:
    spec = parse_inputs("(torch.full((2, 2), 7), torch.arange(5), torch.tensor([[1, 2]]))")
    assert shapes(spec)[0] == [([2, 2], "int64"), ([5], "int64"), ([1, 2], "int64")]
    bare = parse_inputs("torch.empty(3, dtype=torch.float64)")
    assert shapes(bare)[0] == [([3], "float64")]
    listed = parse_inputs("[torch.rand(2), torch.rand(3)]")
    assert shapes(listed)[0] == [[([2], "float32"), ([3], "float32")]]


def test_expression_value_inside_key_value() -> None:
    spec = parse_inputs("x:image8;ids:torch.randint(0, 10, (1, 4))")
    assert shapes(spec)[1]["ids"] == ([1, 4], "int64")


def test_parsed_form_is_plain_data() -> None:
    assert parse_inputs("tensor2:int64").positional == (
        TorchCall("zeros", ((2,),), (("dtype", DType("int64")),)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty input"),
        ("   ;  ", "no input given"),
        ("image", "not an input form"),
        ("imagex32", "not an input form"),
        ("tensor", "not an input form"),
        ("tensor2x", "not an input form"),
        ("tensor1x16:int65", "unknown dtype 'int65'"),
        ("x:", "not an input value"),
        ("x:foo", "not an input value"),
        ("1x:tensor3", "not an argument name"),
        ("x:image4;x:image8", "given twice"),
        ("image4;image8", "only one input may be given without a key"),
        ("{'x': torch.randn(1,}", "not a valid expression"),
        ("__import__('os').system('true')", "not an input form"),
        ("(__import__('os'),)", "not allowed in an input expression: a call of anything"),
        ("[open('/etc/passwd')]", "not allowed in an input expression: a call of anything"),
        ("torch.load('x.pt')", "torch.load"),
        ("torch.randn.__call__(1)", "only torch.<name> may be used"),
        ("torch.nn.functional.relu(torch.randn(1))", "only torch.<name> may be used"),
        ("torch.randn(1, device='cuda')", "keyword 'device'"),
        ("torch.randn(1, **{'device': 'cpu'})", "keyword '**'"),
        ("torch.randn(*[1, 2])", "`*` unpacking"),
        ("{**{}}", "`**` unpacking"),
        ("[x for x in (1, 2)]", "listcomp"),
        ("(lambda: 0,)", "lambda"),
        ("[1 + 2]", "binop"),
        ("[torch]", "name `torch`"),
        ("[torch.cuda]", "only torch dtypes may be named"),
        ("{torch.randn(1): 1}", "non-constant dict key"),
        ("{1: torch.randn(1)}", "dict key 1 is not an argument name"),
        ("[" * 2000 + "]" * 2000, "is not a valid expression"),
        ("x" * 20_000, "longer than"),
    ],
)
def test_malformed_inputs_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputSpecError, match=r"^-i: .*" + _escape(message)):
        parse_inputs(text)


def _escape(text: str) -> str:
    return re.escape(text)


def test_nothing_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for text in (
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"[__import__('pathlib').Path({str(marker)!r}).touch()]",
        f"x:[__import__('pathlib').Path({str(marker)!r}).touch()]",
    ):
        with pytest.raises(InputSpecError):
            parse_inputs(text)
    assert not marker.exists()


def test_a_failing_constructor_is_an_input_error() -> None:
    spec = parse_inputs("torch.randint(5, 1, (2,))")
    with pytest.raises(InputSpecError, match=r"^-i: torch.randint\(...\) failed"):
        spec.materialise("meta")


def test_parsing_needs_no_torch(tmp_path: Path) -> None:
    blocker = torch_blocker(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from nnviz.tracers.inputs import parse_inputs;"
        "s = parse_inputs('x:tensor1x16:int64;y:torch.randn(2, dtype=torch.half)');"
        "print(s.named[0][0], s.named[1][1].function); assert 'torch' not in sys.modules"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(blocker)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["x", "randn"]


# --- binding to forward() -----------------------------------------------------------------------


class TwoInputs(nn.Module):
    def forward(self, pixels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return pixels if mask is None else pixels * mask


def test_a_bare_input_binds_to_the_first_argument_whatever_its_name() -> None:
    bound = parse_inputs("image8").bind(TwoInputs().forward, "meta")
    assert list(bound) == ["pixels", "mask"]
    assert bound["pixels"].shape == (1, 3, 8, 8) and bound["mask"] is None


def test_named_inputs_bind_and_defaults_fill_in() -> None:
    bound = parse_inputs("mask:tensor8;pixels:tensor8").bind(TwoInputs().forward, "meta")
    assert list(bound) == ["pixels", "mask"]  # signature order, not the order given


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:image8", "forward() has no argument 'x' (its arguments: pixels, mask)"),
        ("mask:tensor8", "missing a required argument: 'pixels'"),
        ("image8;pixels:image8", "multiple values for argument 'pixels'"),
        ("(torch.zeros(1), torch.zeros(1), torch.zeros(1))", "too many positional arguments"),
    ],
)
def test_binding_errors_name_the_arguments(text: str, message: str) -> None:
    with pytest.raises(InputSpecError, match=_escape(message)):
        parse_inputs(text).bind(TwoInputs().forward, "meta")


def test_python_objects_bind_like_the_expression_form() -> None:
    x = torch.randn(1, 3, 4, 4)
    assert from_object(x).positional == (x,)
    assert from_object((x, x)).positional == (x, x)
    assert from_object({"mask": x}).named == (("mask", x),)
    moved = from_object({"pixels": x}).bind(TwoInputs().forward, "meta")
    assert moved["pixels"].device.type == "meta"
    with pytest.raises(InputSpecError, match="dict key 3"):
        from_object({3: x})


def test_readme_input_examples_parse() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Tracing with data (`-i`)", 1)[1].split("\n## ", 1)[0]
    quoted = re.findall(r"-i '([^']+)'", section)
    bare = re.findall(r"-i ([A-Za-z][\w:]*)(?:[\s`]|$)", section)
    rows = re.findall(r"^\| `([^`|]+)` \|", section, flags=re.MULTILINE)
    generic = {"-i", "key:value;key:value"}  # the table's header and its pattern row
    examples = [*quoted, *bare, *(r for r in rows if "<" not in r and r not in generic)]
    assert len(examples) >= 7, examples
    for text in examples:
        parse_inputs(text).materialise("meta")
