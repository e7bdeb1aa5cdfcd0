"""nnviz.driftreport: the pytest plugin's report.json, read back and presented for CI.

Diff documents come from real `nnviz.diff` runs on the ci-demo snapshot with edited
hyperparameters (no torch needed), so the renderers see exactly what the plugin stores.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import DEMO_SNAPSHOT, diff_doc, make_drift, make_report

import nnviz
from nnviz import github
from nnviz.diffing import changelog as renderings
from nnviz.diffing.build import diff as graph_diff
from nnviz.driftreport import DriftReport, DriftReportError, text
from nnviz.github import (
    COMMENT_LIMIT,
    COMMENT_MARKER,
    MAX_ERROR_ANNOTATIONS,
    Presentation,
    comment,
    escape_data,
    escape_property,
    page,
    source_url,
    workspace_root,
)
from nnviz.github import workflow_commands as github_annotations

# --- the document --------------------------------------------------------------------------


def test_save_load_round_trip_is_canonical(tmp_path: Path) -> None:
    report = make_report(
        [make_drift(1), make_drift(2, changed=2)], unused=["tests/__nnviz_snapshots__/t/x.json"]
    )
    path = report.save(tmp_path / "out" / "report.json")
    assert DriftReport.load(path) == report
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "nnviz-drift-report" and doc["version"] == 3
    assert list(doc) == sorted(doc)
    assert path.read_text(encoding="utf-8") == report.dumps()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json", "not valid JSON"),
        (lambda d: {**d, "format": "nnviz-graph"}, 'not an nnviz drift report (no "format"'),
        (lambda d: {**d, "version": 4}, "newer nnviz (format version 4;"),
        (lambda d: {**d, "version": 1}, "format version 1 is not supported"),
        (lambda d: {**d, "version": "3"}, '"version" must be an integer'),
        (lambda d: {**d, "summary": {"passed": -1}}, "summary.passed: Input should be greater"),
        (lambda d: {**d, "surprise": 1}, "surprise: Extra inputs are not permitted"),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "line": 0}]},
            "drifts[0].line: Input should be greater than or equal to 1",
        ),
        # A report may come from a CI artifact: `nnviz accept` writes where it points.
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "snapshot": "../../etc/x.json"}]},
            "drifts[0].snapshot: snapshot must be a relative path inside its folder",
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "snapshot": "/etc/passwd"}]},
            "drifts[0].snapshot: snapshot must be a relative path inside its folder",
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "snapshot": "setup.py"}]},
            "drifts[0].snapshot: snapshot must be a .json file under __nnviz_snapshots__/",
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "artifacts": {"new": "../x.json"}}]},
            "drifts[0].artifacts: artifacts.new must be a relative path inside its folder",
        ),
        (lambda d: {**d, "root": "../.."}, "root: root must be a relative path inside its folder"),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "digest": "md5:00"}]},
            "drifts[0].digest: String should match pattern",
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "diff": {"format": "x"}}]},
            'drifts[0].diff: not an nnviz diff document (no "format": "nnviz-diff")',
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "diff": {**diff_doc(), "version": 3}}]},
            "drifts[0].diff: written by a newer nnviz (format version 3;",
        ),
        (
            lambda d: {**d, "drifts": [{**d["drifts"][0], "diff": {**diff_doc(), "nodes": [1]}}]},
            "drifts[0].diff: nodes[0]: Input should be a valid dictionary",
        ),
    ],
)
def test_bad_reports_raise_one_clear_line(tmp_path: Path, mutate: Any, message: str) -> None:
    good = json.loads(make_report([make_drift(1)]).dumps())
    bad = mutate(good)
    path = tmp_path / "report.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad), encoding="utf-8")
    with pytest.raises(DriftReportError) as caught:
        DriftReport.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_a_drift_report_error(tmp_path: Path) -> None:
    with pytest.raises(DriftReportError, match=r"report\.json: cannot read \(No such file"):
        DriftReport.load(tmp_path / "report.json")


def test_ranked_puts_most_changes_first_then_location() -> None:
    drifts = [make_drift(3), make_drift(1), make_drift(2, changed=2)]
    ranked = make_report(drifts).ranked()
    assert [d.nodeid.rsplit("_", 1)[1] for d in ranked] == ["02", "01", "03"]
    assert ranked[0].changes == 2 and ranked[1].changes == 1


# --- GitHub annotations --------------------------------------------------------------------


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("100% a\r\nb") == "100%25 a%0D%0Ab"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    # Escaping `%` first keeps an already-escaped-looking text literal.
    assert escape_data("%0A") == "%250A"


def test_one_error_on_the_test_line_with_the_changelog() -> None:
    drift = make_drift(1)
    lines = github_annotations(make_report([drift]), root="examples/ci-demo")
    assert len(lines) == 1
    command, message = re.fullmatch(r"::error (.*?)::(.*)", lines[0]).groups()  # type: ignore[union-attr]
    props = dict(p.split("=", 1) for p in command.split(","))
    assert props["file"] == "examples/ci-demo/tests/test_models.py"
    assert props["line"] == "11"
    assert props["title"] == "nnviz%3A architecture drift in test_model_01"
    decoded = message.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
    assert "features.0" in decoded and "(5, 5)" in decoded
    assert "run `pytest --nnviz-update tests/test_models.py::test_model_01`" in decoded
    assert "\n" not in lines[0] and "\r" not in lines[0]


def test_hostile_names_cannot_break_out_of_the_command() -> None:
    drift = make_drift(1).model_copy(
        update={"nodeid": "t.py::test[a,b::c\n::error::pwned]", "file": "we,ird:dir/t.py"}
    )
    (line,) = github_annotations(make_report([drift]))
    # The runner ends the properties at the first `::` after `::error`: none may come earlier.
    _, command, message = line.split("::", 2)
    assert command.startswith("error file=we%2Cird%3Adir/t.py,line=11,title=")
    assert command.endswith("test[a%2Cb%3A%3Ac%0A%3A%3Aerror%3A%3Apwned]")
    assert "\n" not in line and "%0A::error::pwned" in message


def test_forty_drifts_give_ten_errors_and_one_warning_naming_the_rest() -> None:
    drifts = [make_drift(i, changed=2 if i % 7 == 0 else 1) for i in range(40)]
    lines = github_annotations(make_report(drifts, unused=["tests/__nnviz_snapshots__/t/old.json"]))
    errors = [line for line in lines if line.startswith("::error ")]
    warnings = [line for line in lines if line.startswith("::warning ")]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert len(errors) == MAX_ERROR_ANNOTATIONS
    assert len(warnings) == 1 and len(notices) == 1 and len(lines) == 12
    # The drifts with the most changes come first.
    for i in (0, 7, 14, 21, 28, 35):
        assert any(f"test_model_{i:02d}" in line for line in errors[:6])
    assert "30 more architecture drift(s) not annotated" in warnings[0]
    assert "1 snapshot file(s) no test used: tests/__nnviz_snapshots__/t/old.json" in notices[0]


def test_no_drift_no_annotation() -> None:
    assert github_annotations(make_report([])) == []


# --- markdown and text ---------------------------------------------------------------------


def test_page_has_the_table_changelog_mermaid_links_and_accept_commands() -> None:
    report = make_report([make_drift(1)])
    how = Presentation(
        artifact_url="https://github.com/o/r/actions/runs/1/artifacts/2",
        run_id="77",
        source_url="https://github.com/o/r/blob/abc",
        root="examples/ci-demo",
    )
    md = page(report, how)
    assert md.startswith("## nnviz: 1 architecture drift\n")
    link = "https://github.com/o/r/blob/abc/examples/ci-demo/tests/test_models.py#L11"
    assert "| test | model | changed | added | removed | renamed | params |" in md
    assert f"| [`test_model_01`]({link}) | `TinyNet` | 1 | 0 | 0 | 0 | ±0 |" in md
    assert "Snapshots: 3 passed · 1 drifted · 0 written" in md
    assert "[download the `nnviz-drift` artifact](https://github.com/o/r/actions/runs/1/" in md
    assert "open `tests/test_models/test_model_01.diff.pdf`" in md
    assert "gh run download 77 -n nnviz-drift -D .nnviz-artifacts && nnviz accept " in md
    assert f"[`examples/ci-demo/tests/test_models.py:11`]({link})" in md
    assert "```text\n~ features.0" in md
    mermaid = re.search(r"```mermaid\n(.*?)\n```", md, re.S)
    assert mermaid and "flowchart" in mermaid.group(1) and "features.0" in mermaid.group(1)
    assert "⚠️" not in md  # nothing removed, parameter count unchanged


def test_page_warns_about_removed_modules_and_big_parameter_moves() -> None:
    old = nnviz.load(DEMO_SNAPSHOT)
    smaller = {**old.modules["features.3"].hparams, "out_channels": 4}
    modules = [
        dataclasses.replace(m, hparams=smaller) if m.path == "features.3" else m
        for m in old.modules.values()
    ]
    doc = graph_diff(old, old.replace(modules=modules)).to_dict()
    drift = make_drift(1).model_copy(update={"diff": doc})
    assert "⚠️" not in page(make_report([drift]))  # hparams only: parameters are unchanged
    removed = graph_diff(old, _without(old, "features.3")).to_dict()
    drift = make_drift(2).model_copy(update={"diff": removed})
    md = page(make_report([drift]))
    assert "⚠️ **test_model_02** removes 1 module: features.3" in md
    assert re.search(r"⚠️ \*\*test_model_02\*\* moves the parameter count by -\d+\.\d%", md)
    assert "| 0 | 0 | 1 | 0 |" in md  # removed column


def _without(graph: nnviz.Graph, path: str) -> nnviz.Graph:
    gone = {n.id for n in graph.nodes if n.module == path}
    nodes = [n for n in graph.nodes if n.id not in gone]
    feeds = {e.target: e.source for e in graph.edges if e.target in gone}
    edges = []
    for e in graph.edges:
        if e.target in gone:
            continue
        if e.source in gone:  # bypass the removed module
            e = dataclasses.replace(e, source=feeds[e.source])
        edges.append(e)
    lost = graph.modules[path].params
    modules = [
        dataclasses.replace(m, params=m.params - lost) if path.startswith(m.path) else m
        for m in graph.modules.values()
        if m.path != path
    ]
    return graph.replace(nodes=nodes, edges=edges, modules=modules)


def test_comment_has_the_marker_and_a_no_drift_note_when_clean() -> None:
    body = comment(make_report([make_drift(1)]))
    assert body.startswith(f"{COMMENT_MARKER}\n## nnviz: 1 architecture drift\n")
    clean = comment(make_report([]))
    assert clean.startswith(f"{COMMENT_MARKER}\n## nnviz: no architecture drift any more\n")
    assert "matches every snapshot (3 snapshots passed)" in clean


def test_mermaid_over_githubs_limits_is_replaced_by_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github, "MERMAID_EDGES", 0)
    md = page(make_report([make_drift(1)]))
    assert "```mermaid" not in md
    assert "more than GitHub's Mermaid draws (50,000 and 0): open the drawing" in md


def test_page_of_forty_drifts_names_all_and_folds() -> None:
    report = make_report([make_drift(i) for i in range(40)])
    md = page(report)
    assert md.startswith("## nnviz: 40 architecture drifts\n")
    for i in range(40):
        assert f"`test_model_{i:02d}`" in md
    assert md.count("<details open>") == 3 and md.count("<details>") == 37


def test_page_stays_under_the_limit_and_says_what_it_left_out() -> None:
    report = make_report([make_drift(i, changed=2) for i in range(200)])
    full = page(report)
    assert len(full.encode()) > COMMENT_LIMIT  # the case worth folding
    md = page(report, limit=COMMENT_LIMIT)
    assert len(md.encode()) <= COMMENT_LIMIT
    shown = md.count("<details")
    assert 0 < shown < 200
    assert f"*{200 - shown} more drifts not shown here" in md
    assert all(f"`test_model_{i:02d}`" in md for i in range(100))  # the table names every drift


def test_thousands_of_drifts_and_unused_files_still_fit() -> None:
    unused = [f"tests/__nnviz_snapshots__/old/{i}.json" for i in range(5000)]
    report = make_report([make_drift(i) for i in range(3000)], unused=unused)
    md = page(report, limit=COMMENT_LIMIT)
    assert len(md.encode()) <= COMMENT_LIMIT
    assert re.search(r"\| … \d+ more: see `report.json` \|", md)
    assert "- … 4900 more in `report.json`" in md
    assert "<details open>" in md  # the most important drift still has its changelog
    tiny = page(report, limit=2000)
    assert len(tiny.encode()) <= 2000 and "## nnviz: 3000 architecture drifts" in tiny


def test_markdown_survives_backticks_and_pipes_in_names() -> None:
    drift = make_drift(1).model_copy(update={"nodeid": "t.py::test[`a|b`]"})
    md = page(make_report([drift]))
    # A longer run of backticks around it, and the pipe escaped so the table keeps its columns.
    assert "| ``test[`a\\|b`]`` |" in md
    assert "<summary>1. test[`a|b`]: 1 change</summary>" in md


def test_text_report() -> None:
    out = text(make_report([make_drift(1)], unused=["tests/__nnviz_snapshots__/t/old.json"]))
    lines = out.splitlines()
    assert lines[0] == "nnviz: 3 passed, 1 drifted, 0 written, 0 missing, 0 failed, 1 unused"
    assert "DRIFT tests/test_models.py:11  tests/test_models.py::test_model_01" in lines
    assert any(line.startswith("  ~ features.0") for line in lines)
    assert "  drawings: tests/test_models/test_model_01.diff.pdf" in lines
    assert "  pending: tests/test_models/test_model_01.new.json" in lines
    assert "  tests/__nnviz_snapshots__/t/old.json" in lines


def test_workspace_root_and_source_url(tmp_path: Path) -> None:
    sub = tmp_path / "examples" / "demo"
    sub.mkdir(parents=True)
    assert workspace_root({"GITHUB_WORKSPACE": str(tmp_path)}, cwd=sub) == "examples/demo"
    assert workspace_root({"GITHUB_WORKSPACE": str(tmp_path)}, cwd=tmp_path) == ""
    assert workspace_root({"GITHUB_WORKSPACE": str(sub)}, cwd=tmp_path) == ""
    assert workspace_root({}, cwd=sub) == ""
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "1"}
    assert source_url(env) == "https://github.com/o/r/blob/1"
    assert source_url({**env, "GITHUB_SHA": ""}) is None


def test_page_says_which_file_to_open_for_the_interactive_diff() -> None:
    drift = make_drift(1)
    html = "tests/test_models/test_model_01.diff.html"
    drift = drift.model_copy(update={"artifacts": {**drift.artifacts, "html": html}})
    md = page(make_report([drift]), Presentation(artifact_url="https://example.invalid/a"))
    assert f"and open `{html}` (each test's files are named below)" in md
    assert "a `.diff.html` opens in any browser, offline" in md
    assert f"In the artifact: `{html}`, `tests/test_models/test_model_01.diff.pdf`." in md


def test_the_page_counts_what_the_changelog_counts() -> None:
    """The table row and the summary line read the changelog's records: two changed convs with
    the same edit are one line `×2` but two changed entries, as the text's totals say."""
    drift = make_drift(1, changed=2)
    log = drift.changelog()
    assert drift.counts == dict(log.counts) and drift.changes == 2
    totals = renderings.totals(drift.diff)
    assert totals.startswith("2 changed")
    md = page(make_report([drift]))
    assert "| 2 | 0 | 0 | 0 |" in md and "1. test_model_01: 2 changes</summary>" in md
