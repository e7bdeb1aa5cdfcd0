"""`matching.match` runs `matching.PASSES`; the module docstring lists exactly those, in order;
`sides.aligned` pairs two key sequences as a text diff would."""

from __future__ import annotations

import re

from nnviz.diffing import matching


def test_the_docstring_lists_the_passes_match_runs() -> None:
    listed = re.findall(r"^\d+\. ([^:]+):", matching.__doc__ or "", flags=re.MULTILINE)
    assert listed == [p.name for p in matching.PASSES]


def test_aligned_pairs_in_order_slides_inserts_down_and_keeps_edits_in_place() -> None:
    from nnviz.diffing.sides import aligned

    # an edit in place among look-alikes: every other index pairs with itself
    assert aligned(list("DBBBBB"), list("DBBXBB")) == [(0, 0), (1, 1), (2, 2), (4, 4), (5, 5)]
    # `conv, relu` added after `conv, relu`: the second pair is the new one (slid down)
    assert aligned(list("CRPCRP"), list("CRCRPCRP")) == [
        (0, 0),
        (1, 1),
        (2, 4),
        (3, 5),
        (4, 6),
        (5, 7),
    ]
    assert aligned(list("CRCRPCRP"), list("CRPCRP")) == [
        (0, 0),
        (1, 1),
        (4, 2),
        (5, 3),
        (6, 4),
        (7, 5),
    ]
    # one removed and one inserted elsewhere: the middle moves, nothing else
    assert aligned(list("abcdefgh"), list("abdefgxh")) == [
        (0, 0),
        (1, 1),
        (3, 2),
        (4, 3),
        (5, 4),
        (6, 5),
        (7, 7),
    ]
