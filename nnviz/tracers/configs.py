"""Config-like values a module keeps (`self.config`): recorded field by field, not as a `repr`.

A Hugging Face `PretrainedConfig`, a dataclass or a namespace held by a module configures its
architecture through its fields, so the snapshot records each field as a hyperparameter
(`config.num_hidden_layers`), compared one by one; one config change is one line. Fields that are
bookkeeping, not architecture, are left out (docs/snapshot-format.md, "Configs"):

- private fields (`_name_or_path`, `_commit_hash`, `_attn_implementation`, ...);
- library and hub bookkeeping: `transformers_version`, `model_type` (the config class's tag;
  the module classes say it), `name_or_path`, `architectures`,
  `torch_dtype`/`dtype`, `tokenizer_class`, `task_specific_params`, `finetuning_task`, `prefix`;
- label names `id2label`/`label2id` (the number of labels shows in the head's parameter shapes);
- output switches `output_attentions`, `output_hidden_states`, `return_dict`, `torchscript`
  (what a call returns, not what the network is; traced outputs show it anyway);
- fields that are `None` (unset: a version that stops listing an unset field changes nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from typing import Any

BOOKKEEPING = frozenset(
    {
        "transformers_version",
        "model_type",
        "name_or_path",
        "architectures",
        "torch_dtype",
        "dtype",
        "tokenizer_class",
        "task_specific_params",
        "finetuning_task",
        "prefix",
        "id2label",
        "label2id",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
        "use_return_dict",
        "torchscript",
    }
)


def fields(value: Any) -> dict[str, Any] | None:
    """The architecture fields of a config-like value, sorted by name; None for other values."""
    raw: dict[str, Any]
    if isinstance(value, type):
        return None
    if callable(getattr(value, "to_dict", None)) and hasattr(value, "to_json_string"):
        # a transformers PretrainedConfig, duck-typed; asked first because transformers 5's
        # configs are also dataclasses whose fields miss what `__post_init__` derives
        # (T5's `dense_act_fn`): `to_dict()` is what the config says it is in every release
        try:
            raw = dict(value.to_dict())
        except Exception:  # a config that cannot describe itself stays a repr
            return None
    elif dataclasses.is_dataclass(value):
        raw = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    elif isinstance(value, (types.SimpleNamespace, argparse.Namespace)):
        raw = dict(vars(value))
    else:
        return None
    return {
        key: raw[key]
        for key in sorted(raw)
        if isinstance(key, str)
        and not key.startswith("_")
        and key not in BOOKKEEPING
        and raw[key] is not None  # unset: a library dropping an unset field changes nothing
    }
