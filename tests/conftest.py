"""Shared fixtures: traced torchvision models are cached per session (tracing is the slow part).

`torch.fx` and every module of nnviz and pytest_nnviz are imported once here, before any test:
pytester's in-process runs (`support.run`) forget every module they import, so a module first
imported inside one would be imported again by the next (torch cannot be; an nnviz class
imported twice is two classes, and `isinstance` between them fails).

The heavy tests (`HEAVY`: determinism across processes, the zoo, the research models, the
browser, the Action's end-to-end runs, pytest sessions under xdist, cold processes) carry the
`heavy` marker, so `pytest -m "not heavy"` is the fast local loop; plain `pytest` runs
everything.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from support import traced

import nnviz
import pytest_nnviz
from nnviz.graph import Graph


def _preload(config: pytest.Config) -> None:
    """torch.fx and every nnviz module, once for the whole session (see above); not in the
    controller of pytest-xdist's workers, which runs no test."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    import torch.fx  # noqa: F401

    for package in (nnviz, pytest_nnviz):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)


HEAVY = (
    "unit/test_trace_determinism.py",
    "unit/test_zoo.py",
    "unit/test_research_models.py",
    "browser/",
    "action/test_action_run.py",
    "action/test_action_shards.py",
    "cli/test_cli_core.py::test_snapshots_are_byte_identical_across_hash_seeds_and_round_trips",
    # pytest sessions under pytest-xdist (each starts two workers that import torch); the same
    # behaviour without xdist stays in the fast loop
    "plugin/test_plugin_lifecycle.py::test_lifecycle[xdist]",
    "plugin/test_plugin_github.py::test_annotations_and_summary[xdist]",
    "plugin/test_plugin_unused.py::test_unused_merged_from_xdist_workers",
    "plugin/test_plugin_shards.py::test_three_shards_merge_into_the_whole_run",
    "plugin/test_plugin_shards.py::test_pytest_split_groups_merge_into_the_whole_run",
    # cold processes whose point is the process: its peak memory, what it imports; the same
    # refusals in-process (test_budget.py) and `nnviz resnet18` itself stay in the fast loop
    "unit/test_budget.py::test_a_copy_above_the_limit_is_refused_in_one_line_and_nothing_is_allocated",
    "unit/test_budget.py::test_a_cpu_build_above_the_limit_is_refused_before_it_allocates",
    "docs/test_readme_setup.py::test_the_drawing_command_runs_without_any_dev_tool",
    # scale: 3,000 drifts on one page (the page limits stay in the fast loop, with 200)
    "unit/test_driftreport.py::test_thousands_of_drifts_and_unused_files_still_fit",
    "properties/test_diff_invariants.py::test_wrapping_thousands_of_identical_blocks_is_one_move_and_fast[3000]",
    # inherently slow models and drawings (the pixel-budget PNGs, and the eager fallback on a
    # family's example input from the command line, raft's, stay fast)
    "unit/test_render.py::test_png_taller_than_cairo_allows_keeps_full_size",
    "unit/test_trace_eager.py::test_detection_model_traces_with_its_family_example",
)
"""Tests (files, folders, one test, or one parametrized case) that trace many models or run
whole pytest sessions under xdist, browsers or cold processes: seconds to minutes each on 2
cores."""
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(_TESTS.resolve()).as_posix()
        names = (where, f"{where}::{item.name.partition('[')[0]}", f"{where}::{item.name}")
        if any(where.startswith(h) if h.endswith("/") else h in names for h in HEAVY):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def resnet18() -> Graph:
    return traced("resnet18")


@pytest.fixture(scope="session")
def exported_once() -> None:
    """For modules whose pytester runs trace with torch.export: it imports torch modules
    lazily, one of which registers an operator library, so the first export must happen
    before any run (which would forget the module, and the next run import it again)."""
    from torch import nn

    nnviz.trace(nn.Linear(2, 2), inputs="tensor2x2", tracer="export")


# --- hypothesis: a fixed example budget, and a seed that is printed so a failure can be rerun ---

settings.register_profile("ci", max_examples=50, deadline=None, print_blob=True, derandomize=False)
settings.load_profile(os.environ.get("NNVIZ_HYPOTHESIS_PROFILE", "ci"))
_SEED_ENV = "NNVIZ_HYPOTHESIS_SEED"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One random seed per run (shared with xdist workers through the environment), unless
    `--hypothesis-seed` is given; it is shown in the header and beside every failing test.
    Then the preload."""
    _preload(config)
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = os.environ.setdefault(
            _SEED_ENV, str(random.randrange(2**32))
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = getattr(config.option, "hypothesis_seed", None)
    return f"hypothesis seed: {seed} (rerun with --hypothesis-seed={seed})" if seed else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    seed = getattr(item.config.option, "hypothesis_seed", None)
    if report.failed and seed and item.get_closest_marker("hypothesis"):
        report.sections.append(
            ("hypothesis seed", f"rerun with: pytest {item.nodeid} --hypothesis-seed={seed}")
        )
