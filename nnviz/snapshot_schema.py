"""The snapshot schema (format version 4; versions 1 to 3 validate too) as pydantic models.

`nnviz.snapshot` reads documents in the exact form it writes without these models (importing
pydantic costs more than loading a large snapshot) and falls back to them for anything else: they
coerce what the schema allows and name the first fault. `nnviz.snapshot.json_schema()` generates
the shipped `nnviz/schema/snapshot-v4.schema.json` from them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ModuleV4(_Strict):
    """A module tree entry."""

    path: str = Field(description="Qualified name as in named_modules(); '' is the root.")
    cls: str = Field(alias="class", description="Qualified class name.")
    params: int = Field(0, ge=0, description="Parameters of this module and its children.")
    hparams: dict[str, JsonValue] = Field(default_factory=dict, description="Hyperparameters.")
    parameters: dict[str, list[int]] = Field(
        default_factory=dict, description="Shapes of the module's own parameters."
    )
    bases: list[str] = Field(
        default_factory=list,
        description="Public module classes the class derives from, nearest first.",
    )
    ties: dict[str, str] = Field(
        default_factory=dict,
        description="Own parameters and persistent buffers that are another's: the name each "
        "was first registered under.",
    )
    buffers: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Shapes of the module's own persistent buffers (version 4).",
    )
    dtypes: dict[str, str] = Field(
        default_factory=dict,
        description="dtype of each own parameter and persistent buffer (version 4).",
    )
    extra_state: bool = Field(
        False, description="Whether state_dict() holds the module's _extra_state (version 4)."
    )


class CostV4(_Strict):
    """One op's cost (version 4)."""

    macs: int = Field(0, ge=0, description="Multiply-accumulates (FLOPs = 2 x MACs).")
    out_bytes: int = Field(0, ge=0, description="Bytes of the new tensors the op outputs.")
    uncounted: dict[str, int] = Field(
        default_factory=dict, description="Ops it ran that have no compute formula, by name."
    )


class NodeV4(_Strict):
    """A data-flow node."""

    id: str = Field(min_length=1, description="Structural id, unique in the graph.")
    kind: Literal["input", "output", "module", "function", "method"]
    op: str = Field(description="Module class, qualified function, method name or input name.")
    scope: str = Field("", description="Path of the enclosing module.")
    module: str | None = Field(None, description="Called module's path, for module nodes.")
    args: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Constant arguments by the callee's parameter name (version 3; positions "
        "'0', '1' where no signature is known, and in versions 1-2), defaults left out.",
    )
    spec: JsonValue = Field(None, description="Output spec when traced with data.")
    meta: dict[str, JsonValue] = Field(default_factory=dict, description="Cosmetic data.")
    cost: CostV4 | None = Field(
        None, description="What the op costs, when traced with data (version 4); absent: unknown."
    )


class EdgeV4(_Strict):
    """A data-flow edge."""

    source: str
    target: str
    slots: list[str] = Field(
        default_factory=list, description="Argument slots fed, named as node args are."
    )


class SnapshotV4(_Strict):
    """A whole snapshot document, format version 4 (versions 1 to 3 validate too)."""

    format: Literal["nnviz-graph"]
    version: Literal[1, 2, 3, 4]
    meta: dict[str, JsonValue] = Field(default_factory=dict)
    modules: list[ModuleV4]
    nodes: list[NodeV4]
    edges: list[EdgeV4]
