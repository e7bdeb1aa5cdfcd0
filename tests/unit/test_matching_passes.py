"""`matching.match` runs `matching.PASSES`; the module docstring lists exactly those, in order."""

from __future__ import annotations

import re

from nnviz.diffing import matching


def test_the_docstring_lists_the_passes_match_runs() -> None:
    listed = re.findall(r"^\d+\. ([^:]+):", matching.__doc__ or "", flags=re.MULTILINE)
    assert listed == [p.name for p in matching.PASSES]
