"""Where snapshots live: one file per call, beside the test file, with file-system-safe names."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run

import nnviz
from pytest_nnviz.location import locate, safe_name

TESTS = """
import pytest
import torch.nn as nn


@pytest.mark.parametrize("width", [4, 8], ids=["narrow", "wide/odd: id"])
def test_param(nnviz_snapshot, width):
    nnviz_snapshot(nn.Linear(width, 2))


def test_three(nnviz_snapshot):
    nnviz_snapshot(nn.Linear(2, 2))
    nnviz_snapshot(nn.Linear(3, 3))
    nnviz_snapshot(nn.Linear(4, 4), name="head")
    nnviz_snapshot(nn.Linear(5, 5))


class TestGroup:
    def test_in_class(self, nnviz_snapshot):
        nnviz_snapshot(nn.ReLU())


def test_same_name_twice(nnviz_snapshot):
    nnviz_snapshot(nn.ReLU(), name="x")
    nnviz_snapshot(nn.Tanh(), name="x")
"""


def test_every_call_gets_its_own_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_names=TESTS)
    result = run(pytester, "--nnviz-update")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        ["*nnviz: two nnviz_snapshot calls in this test use test_same_name_twice.x.json*"]
    )
    folder = pytester.path / "__nnviz_snapshots__" / "test_names"
    assert sorted(p.name for p in folder.iterdir()) == [
        "TestGroup.test_in_class.json",
        "test_param[narrow].json",
        "test_param[wide_odd__id].json",
        "test_same_name_twice.x.json",
        "test_three.1.json",
        "test_three.2.json",
        "test_three.head.json",
        "test_three.json",
    ]
    widths = {
        name: nnviz.load(folder / name).modules[""].hparams["in_features"]
        for name in ("test_three.json", "test_three.1.json", "test_three.head.json")
    }
    assert widths == {"test_three.json": 2, "test_three.1.json": 3, "test_three.head.json": 4}
    assert nnviz.load(folder / "test_three.2.json").modules[""].hparams["in_features"] == 5

    result = run(pytester)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["nnviz: 8 snapshots passed"])


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_m.py::test_a", "tests/__nnviz_snapshots__/test_m/test_a.json"),
        ("tests/test_m.py::test_a[x-1]", "tests/__nnviz_snapshots__/test_m/test_a[x-1].json"),
        ("tests/test_m.py::TestC::test_a", "tests/__nnviz_snapshots__/test_m/TestC.test_a.json"),
        (
            "tests/test_m.py::test_a[a/b\\c:d*?]",
            "tests/__nnviz_snapshots__/test_m/test_a[a_b_c_d__].json",
        ),
    ],
)
def test_node_ids_map_to_portable_paths(nodeid: str, expected: str) -> None:
    test_file = Path("tests/test_m.py")
    assert locate(nodeid, test_file).snapshot() == Path(expected)


def test_names_and_numbers_for_several_calls() -> None:
    where = locate("t.py::test_a", Path("t.py"))
    assert where.snapshot(index=1).name == "test_a.1.json"
    assert where.snapshot("enc oder/1").name == "test_a.enc_oder_1.json"
    assert where.owns("test_a.json") and where.owns("test_a.enc.json")
    assert not where.owns("test_ab.json") and not where.owns("test_a[1].json")


def test_long_ids_stay_short_and_distinct() -> None:
    one, two = safe_name("p" * 300 + "1"), safe_name("p" * 300 + "2")
    assert len(one) <= 120 and len(two) <= 120 and one != two
    assert safe_name("..") == "_"
