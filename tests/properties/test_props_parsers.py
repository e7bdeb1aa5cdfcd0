"""Fuzzed parsers: the `-i` input language, `-a` constructor arguments and `-S` style pairs.

Any string either parses to the documented value or raises the parser's own `NNVizError`
subclass with one line, never another exception; nothing is ever evaluated as code.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from xml.etree import ElementTree

import pygraphviz
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnviz.errors import InputSpecError, ModelSpecError, StyleError
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.models import parse_arguments
from nnviz.render import parse_style, render, to_dot
from nnviz.render import style as style_module
from nnviz.render.style import style_fields
from nnviz.tracers.expression import DTYPES, DType, TorchCall
from nnviz.tracers.inputs import InputSpec, parse_inputs

TOKENS = [
    "default", "image", "tensor", "x", "y", ":", ";", "int64", "bool", "float16", "long", "32",
    "1", "0", "x", "torch.", "randn", "zeros", "randint", "(", ")", "[", "]", "{", "}", ",", "=",
    "dtype", "'", '"', "-", " ", "__import__", "lambda", ".", "*", "**", "os", "\\", "\n", "é",
]  # fmt: skip
GRAMMAR = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)
ANY_TEXT = st.text(max_size=60) | GRAMMAR


def _one_line(exc: Exception) -> None:
    assert str(exc).strip() and "\n" not in str(exc)


# --- -i ------------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(text=ANY_TEXT)
def test_any_input_text_parses_or_raises_input_spec_error(text: str) -> None:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            spec = parse_inputs(text)
        assert not caught
    except InputSpecError as exc:
        _one_line(exc)
    else:
        assert isinstance(spec, InputSpec) and spec.text == text
        assert spec.positional or spec.named


def _preset(shape: tuple[int, ...], dtype: str | None) -> TorchCall:
    name = DTYPES[dtype] if dtype else "float32"
    function = "randn"
    if name in ("int64", "int32", "int16", "int8", "uint8"):
        function = "zeros"
    elif name == "bool":
        function = "ones"
    return TorchCall(function, (shape,), (("dtype", DType(name)),))


DIMS = st.lists(st.integers(0, 4096), min_size=1, max_size=5)
DTYPE = st.none() | st.sampled_from(sorted(DTYPES))


@given(dims=DIMS, dtype=DTYPE, side=st.integers(1, 2048), width=st.none() | st.integers(1, 2048))
def test_presets_parse_to_the_documented_tensors(
    dims: list[int], dtype: str | None, side: int, width: int | None
) -> None:
    suffix = f":{dtype}" if dtype else ""
    tensor = parse_inputs(f"tensor{'x'.join(map(str, dims))}{suffix}")
    assert tensor.positional == (_preset(tuple(dims), dtype),) and tensor.named == ()
    image = f"image{side}" + (f"x{width}" if width else "") + suffix
    expected = _preset((1, 3, side, width or side), dtype)
    assert parse_inputs(image).positional == (expected,)
    both = parse_inputs(f" pixels : {image} ; mask:tensor{dims[0]}:bool ")
    assert both.named == (("pixels", expected), ("mask", _preset((dims[0],), "bool")))
    assert parse_inputs("default").positional == (_preset((1, 3, 224, 224), None),)


SIMPLE = st.recursive(
    st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=6,
)


@given(shape=st.lists(st.integers(1, 64), min_size=1, max_size=4), value=SIMPLE)
def test_expressions_parse_to_calls_without_running_them(shape: list[int], value: object) -> None:
    text = f"{{'x': torch.randint(0, 10, {tuple(shape)!r}, dtype=torch.long), 'v': {value!r}}}"
    spec = parse_inputs(text)
    assert spec.named == (
        ("x", TorchCall("randint", (0, 10, tuple(shape)), (("dtype", DType("int64")),))),
        ("v", value),
    )


REFUSED_EXPRESSIONS = [
    "__import__('os')",
    "(__import__('os').system('touch PWNED'))",
    "().__class__",
    "(().__class__.__bases__[0].__subclasses__())",
    "[c for c in ().__class__.__mro__]",
    "[x for x in range(3)]",
    "{k: 1 for k in 'ab'}",
    "(lambda: 0)",
    "(lambda: __import__('os'))()",
    "torch.nn.Module",
    "torch.nn.Module()",
    "torch.load('PWNED')",
    "torch.randn.__globals__",
    "torch.randn(1).numpy()",
    "torch.randn(1, device='cuda')",
    "torch.randn(*[1, 2])",
    "torch.randn(**{'size': 1})",
    "{**{'x': 1}}",
    "(open('PWNED', 'w'))",
    "[open('PWNED', 'w')]",
    "(eval('1'))",
    "(exec('import os'))",
    "(getattr(torch, 'load'))",
    "(torch if 1 else 0)",
    "(x := 1)",
    "(1 + 1)",
    "(f'{1}')",
    "(b'x')",
    "(1j)",
    "(...)",
    "[torch.randn(1)][0]",
    "(torch.randn(1), os.system)",
    "{'x': __builtins__}",
    "torch.randn(1)(2)",
    "torch.tensor([1]).__class__",
]


@pytest.mark.parametrize("text", REFUSED_EXPRESSIONS)
def test_code_in_an_input_expression_is_refused(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for form in (text, f"x:{text}", f"x:image8;y:{text}"):
        with pytest.raises(InputSpecError) as caught:
            parse_inputs(form)
        _one_line(caught.value)
    assert not list(tmp_path.iterdir())  # nothing ran: no file was made


@given(depth=st.integers(1, 5000), opener=st.sampled_from(["(", "[", "{'a':", "torch.randn("]))
def test_deep_expressions_are_refused_cleanly(depth: int, opener: str) -> None:
    closer = {"(": ")", "[": "]", "{'a':": "}", "torch.randn(": ")"}[opener]
    text = opener * depth + "1" + closer * depth
    try:
        parse_inputs(text)
    except InputSpecError as exc:
        _one_line(exc)


# --- -a ------------------------------------------------------------------------------------------

LITERALS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # repr(inf) is no literal
    | st.text(max_size=10)
    | st.binary(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@given(key=KEY, value=LITERALS)
def test_literal_arguments_parse_to_their_value(key: str, value: object) -> None:
    assert parse_arguments([f"{key}={value!r}"]) == {key: value}
    assert parse_arguments([f" {key} = {value!r} "]) == {key: value}


@settings(max_examples=300)
@given(pairs=st.lists(ANY_TEXT | st.builds("{}={}".format, KEY, ANY_TEXT), max_size=4))
def test_any_argument_parses_or_raises_model_spec_error(pairs: list[str]) -> None:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parsed = parse_arguments(pairs)
        assert not caught  # nothing but the one error line may reach the terminal
    except ModelSpecError as exc:
        _one_line(exc)
        return
    expected: dict[str, object] = {}
    for pair in pairs:  # later pairs win
        key, _, text = pair.partition("=")
        try:
            expected[key.strip()] = ast.literal_eval(text.strip())
        except Exception:
            expected[key.strip()] = text.strip()  # documented: a non-literal is the text itself
    assert repr(parsed) == repr(expected)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch PWNED')",
        "open('PWNED', 'w')",
        "(lambda: open('PWNED', 'w'))()",
        "[open('PWNED', 'w') for _ in 'x']",
        "torch.nn.Module()",
        "().__class__.__bases__[0].__subclasses__()",
    ],
)
def test_code_in_an_argument_stays_text(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_arguments([f"cmd={text}"]) == {"cmd": text}
    assert not list(tmp_path.iterdir())


@given(depth=st.integers(1, 100_000), unit=st.sampled_from(["-", "(", "[", "not ", "1+", "~"]))
def test_deep_arguments_never_crash(depth: int, unit: str) -> None:
    text = unit * depth + "1" + {"(": ")", "[": "]"}.get(unit, "") * depth
    assert "x" in parse_arguments([f"x={text}"])


# --- -S ------------------------------------------------------------------------------------------

FIELDS = style_fields()


def _valid(name: str) -> st.SearchStrategy[tuple[str, object]]:
    annotation = FIELDS[name].type
    if annotation == "bool":
        return st.sampled_from(
            [("true", True), ("False", False), ("1", True), ("0", False), ("yes", True)]
        )
    if annotation == "int":
        return st.integers(1, 1200).map(lambda n: (str(n), n))
    if name in _CHOICES:
        return st.sampled_from([(v, v) for v in _CHOICES[name]])
    return _VALID_TEXT[name].map(lambda t: (t, t.strip()))


# What each validated text key accepts (style.py's own patterns): Graphviz copies them verbatim.
_VALID_TEXT: dict[str, st.SearchStrategy[str]] = {
    "fontname": st.from_regex(style_module._FONT, fullmatch=True),
    "default_node_color": st.from_regex(style_module._COLOR, fullmatch=True),
    "default_edge_color": st.from_regex(style_module._COLOR, fullmatch=True),
    "node_style": st.lists(
        st.sampled_from(sorted(style_module._NODE_STYLES)), min_size=1, max_size=3
    ).map(",".join),
    "node_margin": st.from_regex(style_module._MARGIN, fullmatch=True),
    "edge_thickness": st.floats(0.1, 20).map(lambda f: f"{f:.2f}"),
}


_CHOICES = {"rankdir": ("TB", "LR"), "bookkeeping": ("fold", "show")}


@given(data=st.data(), names=st.lists(st.sampled_from(sorted(FIELDS)), max_size=5, unique=True))
def test_valid_style_pairs_parse_to_their_value(data: st.DataObject, names: list[str]) -> None:
    chosen = {name: data.draw(_valid(name), label=name) for name in names}
    style = parse_style([f"{name}={text}" for name, (text, _) in chosen.items()])
    for name, (_, value) in chosen.items():
        assert getattr(style, name) == value


@settings(max_examples=300)
@given(
    pairs=st.lists(
        ANY_TEXT | st.builds("{}={}".format, st.sampled_from(sorted(FIELDS)), ANY_TEXT), max_size=4
    )
)
def test_any_style_pair_parses_or_raises_style_error(pairs: list[str]) -> None:
    try:
        parse_style(pairs)
    except StyleError as exc:
        _one_line(exc)


def _tiny() -> Graph:
    return Graph(
        [Node("input:x", "input", "x"), Node("fc", "module", "torch.nn.Linear", module="fc")],
        [Edge("input:x", "fc", ("0",))],
        [Module("", "m.M", 6), Module("fc", "torch.nn.Linear", 6, {"in_features": 2})],
        {"name": "tiny"},
    )


TEXT_FIELDS = sorted(name for name, field in FIELDS.items() if field.type == "str")


@settings(max_examples=40)
@given(name=st.sampled_from(TEXT_FIELDS), value=st.text(max_size=30))
def test_any_style_text_never_breaks_the_dot(name: str, value: str) -> None:
    """Style strings are attribute values: the DOT keeps its two nodes and one edge, whatever
    they hold (Graphviz may warn about an unknown colour, but nothing is injected)."""
    try:
        style = parse_style([f"{name}={value}"])
    except StyleError as exc:
        _one_line(exc)
        return
    dot = to_dot(_tiny(), style)
    parsed = pygraphviz.AGraph(string=dot)
    assert parsed.number_of_nodes() == 2 and parsed.number_of_edges() == 1
    svg = ElementTree.fromstring(render(dot, "svg"))  # Graphviz lays it out; the SVG parses
    groups = [g.get("class") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert groups.count("node") == 2 and groups.count("edge") == 1
