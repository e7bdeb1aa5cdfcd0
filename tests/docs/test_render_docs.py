"""The README's Drawing section stays true: its options and style keys are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

from nnviz.cli import draw_command
from nnviz.render.style import style_fields, style_keys

README = Path(__file__).resolve().parents[2] / "README.md"


def drawing_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Drawing")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_option_in_the_table_exists_and_every_drawing_option_is_documented() -> None:
    section = drawing_section()
    documented = set(re.findall(r"^\| `(-\w, )?(--[\w-]+)", section, flags=re.MULTILINE))
    long_names = {name for _, name in documented}
    real = {opt for param in draw_command.params for opt in param.opts if opt.startswith("--")}
    drawing = {"--out", "--depth", "--collapse", "--layer", "--style", "--show", "--engine"}
    assert drawing <= long_names <= real


def test_style_keys_and_defaults_match_the_model() -> None:
    section = drawing_section()
    paragraph = section[section.index("Style keys") :].split("\n\n")[0]
    keys = re.findall(r"`(\w+)`", paragraph)
    fields = style_fields()
    assert [k for k in keys if k in fields] == style_keys()
    for key, default in re.findall(r"`(\w+)` \(([^)]*)\)", paragraph):
        if key in fields and "," not in default and default != "all true":
            assert str(fields[key].default) == default.split(" ")[0], key


def test_readme_commands_use_real_options() -> None:
    block = re.search(r"```bash\n(.*?)```", drawing_section(), flags=re.DOTALL)
    assert block is not None
    real = {opt for param in draw_command.params for opt in param.opts}
    for line in block.group(1).splitlines():
        command = line.split("#")[0].split()
        assert command[0] == "nnviz"
        assert all(word in real for word in command if word.startswith("-") and word != "-1")
