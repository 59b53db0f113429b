"""Print README's settings table from the Settings class; `--write` puts it in README.

tests/test_settings.py fails when README's table and the class differ."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from userservice.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- settings table: scripts/settings_table.py --write -->"
END = "<!-- end of settings table -->"


def _default(value: Any) -> str:
    if value in ("", [], None):
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    return f"`{value}`"


def rows() -> list[tuple[str, str, str]]:
    prefix = Settings.model_config.get("env_prefix", "")
    found = []
    # The class's own fields first (the database, the issuer …), then the fleet's.
    own = [n for n in Settings.model_fields if n in vars(Settings).get("__annotations__", {})]
    names = own + [n for n in Settings.model_fields if n not in own]
    for name in names:
        field = Settings.model_fields[name]
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        found.append(
            (f"`{prefix}{name.upper()}`", _default(default), (field.description or "").strip())
        )
    return found


def table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {name} | {default} | {meaning} |" for name, default, meaning in rows()]
    return "\n".join(lines)


def readme_table(readme: str) -> str:
    """The table as README has it now (between the markers)."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:end].strip()


def variables(text: str) -> list[str]:
    """Every variable a table names in its first column."""
    return re.findall(r"^\| `([A-Z0-9_]+)`", text, flags=re.MULTILINE)


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        readme = README.read_text()
        start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
        README.write_text(f"{readme[:start]}\n{table()}\n{readme[end:]}")
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
