"""The snapshot codec: canonical, round-tripping, validated, and free of torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import torch_blocker

import nnviz
from nnviz import snapshot
from nnviz.diffing.changelog import changelog, markdown
from nnviz.errors import SnapshotError
from nnviz.graph import Edge, Graph, Module, Node


def test_round_trip_is_identity(resnet18: Graph, tmp_path: Path) -> None:
    path = nnviz.save(resnet18, tmp_path / "r.json")
    loaded = nnviz.load(path)
    assert loaded == resnet18
    assert snapshot.dumps(loaded) == path.read_text()


def test_layout_is_one_line_per_record(resnet18: Graph) -> None:
    text = snapshot.dumps(resnet18)
    lines = text.splitlines()
    assert len(lines) == len(resnet18) + len(resnet18.edges) + len(resnet18.modules) + 11
    assert json.loads(text)["version"] == snapshot.VERSION


def test_shipped_schema_matches_models() -> None:
    shipped = json.loads(snapshot.SCHEMA_PATH.read_text())
    assert shipped == snapshot.json_schema(), "regenerate nnviz/schema/ (see snapshot.json_schema)"


def test_odd_values_survive(tmp_path: Path) -> None:
    args = {
        "0": {"$tuple": [1, {"$slice": [None, 2, None]}, {"$ellipsis": None}]},
        "dtype": {"$dtype": "int64"},
        "device": {"$device": "cpu"},
        "eps": {"$float": "nan"},
        "text": 'quote " < & \n',
    }
    g = Graph(
        [Node("input:x", "input", "x"), Node("a\n<b>", "function", "torch.add", args=args)],
        [Edge("input:x", "a\n<b>", ("0",))],
        [Module("", "m.M", 0)],
        {"name": "odd"},
    )
    assert snapshot.loads(snapshot.dumps(g)) == g


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not an nnviz graph snapshot"),
        ('{"format": "nnviz-graph", "version": 99}', "newer nnviz"),
        ('{"format": "nnviz-graph", "version": 1, "meta": {"x": NaN}}', "NaN is not JSON"),
        ('{"format": "nnviz-graph", "version": "1"}', "must be an integer"),
        (
            '{"format": "nnviz-graph", "version": 1, "modules": [], "edges": [],'
            ' "nodes": [{"id": "a", "kind": "module", "op": 3}]}',
            "nodes[0].op",
        ),
        (
            '{"format": "nnviz-graph", "version": 1, "modules": [], "nodes": [],'
            ' "edges": [{"source": "a", "target": "b"}]}',
            "no node",
        ),
    ],
)
def test_bad_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(SnapshotError, match="^snapshot: .*" + message.replace("[", r"\[")):
        snapshot.loads(text)


def test_loading_needs_no_torch(resnet18: Graph, tmp_path: Path) -> None:
    """Load and re-save in a process where importing torch fails."""
    src = nnviz.save(resnet18, tmp_path / "r.json")
    blocker = torch_blocker(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import nnviz; g = nnviz.load(sys.argv[2]); nnviz.save(g, sys.argv[3]);"
        "assert 'torch' not in sys.modules"
    )
    out = tmp_path / "r2.json"
    subprocess.run([sys.executable, "-c", code, str(blocker), str(src), str(out)], check=True)
    assert out.read_bytes() == src.read_bytes()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["modules", "nodes", "edges", "meta", "version", "format"]),
    index=st.integers(0, 5),
    key=st.sampled_from(["id", "kind", "op", "path", "class", "params", "source", "slots", "x"]),
    junk=_json,
)
def test_damaged_documents_fail_with_a_snapshot_error_only(
    small_doc: dict, section: str, index: int, key: str, junk: object
) -> None:
    """Any damage to a valid document is refused as `SnapshotError` (one line), never a crash."""
    doc = json.loads(json.dumps(small_doc))
    part = doc[section]
    if isinstance(part, list) and part:
        record = part[index % len(part)]
        record[key] = junk
    elif isinstance(part, dict):
        part[key] = junk
    else:
        doc[section] = junk
    try:
        graph = snapshot.loads(json.dumps(doc))
    except SnapshotError as exc:
        assert "\n" not in str(exc)
    else:
        assert snapshot.loads(snapshot.dumps(graph)) == graph


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["modules", "nodes", "edges"]),
    key=st.sampled_from(["id", "kind", "op", "scope", "module", "args", "meta", "path", "class"])
    | st.sampled_from(["params", "hparams", "parameters", "bases", "ties", "buffers", "dtypes"])
    | st.sampled_from(["extra_state", "source", "target", "slots", "spec", "cost", "x"]),
    junk=_json,
    dropped=st.sampled_from([None, "params", "hparams", "scope", "module", "slots", "kind"]),
)
def test_the_fast_reader_accepts_only_what_the_schema_accepts(
    small_doc: dict, section: str, key: str, junk: object, dropped: str | None
) -> None:
    """`_plain_graph` (no pydantic) gives the schema's graph, or None to let the schema decide
    (a `cost` kept as written by both: `{}` and `{"out_bytes": 0}` too)."""
    doc = json.loads(json.dumps(small_doc))
    doc[section][-1].pop(dropped, None)
    doc[section][-1][key] = junk
    try:
        fast = snapshot._plain_graph(doc)
    except ValueError:  # a graph that cannot be (an edge to no node): both refuse it
        with pytest.raises(SnapshotError):
            snapshot._validated_graph(doc, "snapshot")
        return
    if fast is not None:
        assert fast == snapshot._validated_graph(doc, "snapshot")


def test_the_fast_reader_makes_the_constructors_records(tmp_path: Path) -> None:
    """Every field of a loaded record is set (none left to a class default), equal to what the
    constructor makes, and read-only where the constructor makes it so."""
    cost = {"macs": 4, "out_bytes": 16, "uncounted": {"my_op": 2}}
    full = Module(
        "fc", "x.Linear", 6, {"in_features": 2}, {"weight": (3, 2)}, ("torch.nn.Linear",),
        {"bias": "other.bias"}, {"running": (3,)}, {"weight": "float32"}, True,
    )  # fmt: skip
    g = Graph(
        [
            Node("input:x", "input", "x"),
            Node("fc", "module", "x.Linear", "", "fc", {"0": 1}, {"$tuple": [2]}, {"a": 1}, cost),
        ],
        [Edge("input:x", "fc", ("0",))],
        [Module("", "m.M", 6), full],
        {"name": "full"},
    )
    loaded = snapshot.loads(snapshot.dumps(g))
    pairs = [
        *zip(g.nodes, loaded.nodes, strict=True),
        *zip(g.modules.values(), loaded.modules.values(), strict=True),
    ]
    for made, read in pairs:
        assert list(vars(read)) == list(vars(made))  # every field, in the same order
        assert read == made
        for name, value in vars(read).items():
            assert type(value) is type(vars(made)[name]), name


@pytest.fixture(scope="module")
def small_doc() -> dict:
    g = Graph(
        [Node("input:x", "input", "x"), Node("fc", "module", "torch.nn.Linear", module="fc")],
        [Edge("input:x", "fc", ("0",))],
        [Module("", "m.M", 6), Module("fc", "torch.nn.Linear", 6, {"in_features": 2})],
        {"name": "small", "inputs": None},
    )
    return json.loads(snapshot.dumps(g))  # type: ignore[no-any-return]


def test_a_version_1_snapshot_reads_and_says_it_was_migrated() -> None:
    text = (
        '{"format": "nnviz-graph", "version": 1, "meta": {"name": "m"}, "edges": [],'
        ' "modules": [{"path": "", "class": "x.M"}], "nodes": [{"id": "input:x", "kind": "input",'
        ' "op": "x"}]}'
    )
    graph = snapshot.loads(text)
    assert graph.meta == {"name": "m", snapshot.MIGRATED: 1}
    assert graph.modules[""].bases == ()


@pytest.mark.parametrize(
    ("text", "printable"),
    [
        ("plain", True),
        ("caf\u00e9", True),
        ("tab\there", False),
        ("esc\x1b[31mred", False),
        ("c1\x85next", False),
        ("line\u2028sep", False),
        ("back\\slash", False),
        ("dash\u2014", False),  # U+2014 shares U+2028's lead bytes: looked at, nothing found
    ],
)
def test_a_diff_of_snapshot_bytes_renders_as_its_document_does(text: str, printable: bool) -> None:
    """Snapshot bytes with no escape and no raw control character load `printable`, and the
    diff's renderings then skip `document.read`'s search: they must say what the document's
    renderings (which always search) say, and never a control character."""

    def loaded(cls: str) -> Graph:
        g = Graph(
            [Node("input:x", "input", "x"), Node("fc", "module", cls, module="fc")],
            [Edge("input:x", "fc", ("0",))],
            [Module("", "m.M", 6), Module("fc", cls, 6, {"mode": cls})],
            {"name": cls},
        )
        return snapshot.loads(snapshot.dumps(g).encode())

    old, new = loaded("x.Linear"), loaded(f"x.{text}")
    assert old.printable and new.printable is printable
    result = nnviz.diff(old, new)
    doc = result.to_dict()
    for verbose in (False, True):
        text_out = result.to_text(verbose)
        assert text_out == changelog(doc, verbose)
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", text_out)
    assert result.to_markdown() == markdown(doc)


@pytest.mark.parametrize("cost", [{}, {"macs": 0, "out_bytes": 0}, {"out_bytes": 8}])
def test_both_readers_keep_a_cost_as_written(small_doc: dict, cost: dict) -> None:
    """The fast reader and the schema's (which reads any document the fast one leaves to it)
    read one document to equal graphs, a cost kept as written."""
    doc = json.loads(json.dumps(small_doc))
    doc["nodes"][-1]["cost"] = cost
    fast = snapshot._plain_graph(doc)
    assert fast is not None and dict(fast.nodes[-1].cost or {}) == cost
    assert snapshot._validated_graph(doc, "snapshot") == fast
