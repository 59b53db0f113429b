"""The layers hold: api/ and web/ reach the database only through services, web/
does not import api/, the layers below the HTTP ones know nothing of HTTP, and
routes take their collaborators through `Depends` (one module reads the app's
state). Read from the source, so a new module is checked the day it appears."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "userservice"
HTTP_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
# The only module that reads the container off the application (userservice/wiring.py).
STATE_READER = PACKAGE / "wiring.py"
_APP_STATE = re.compile(r"\bapp\s*\.\s*state\b")


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported(source: str, package: str) -> set[str]:
    """Every module that `source`, a module of `package`, imports: relative imports
    resolved, and `from a import b` counted as `a.b` too (b may be a module).
    Imports under TYPE_CHECKING count."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imported_by(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    return imported(path.read_text(encoding="utf-8"), package)


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offending(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in modules(folder):
            bad = sorted(
                name for name in imported_by(path) if any(within(name, f) for f in forbidden)
            )
            if bad:
                found[str(path.relative_to(PACKAGE.parent))] = bad
    return found


def test_the_checker_sees_every_form_of_import() -> None:
    # The checks below are only as good as this reading of a module's imports.
    source = (
        "import userservice.db.models\n"
        "from userservice import db\n"
        "from ..api import deps\n"
        "from . import browser\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from userservice.db.engine import Database\n"
    )
    found = imported(source, "userservice.web")
    assert {"userservice.db.models", "userservice.db", "userservice.api.deps"} <= found
    assert {"userservice.web.browser", "userservice.db.engine"} <= found
    assert offending(("web",), ("userservice.web.browser",))  # pages.py imports it


@pytest.mark.parametrize("folder", ["api", "web"])
def test_http_layers_reach_the_database_only_through_services(folder: str) -> None:
    assert offending((folder,), ("userservice.db",)) == {}


def test_web_does_not_import_api() -> None:
    assert offending(("web",), ("userservice.api",)) == {}


def test_layers_below_http_know_nothing_of_http() -> None:
    assert offending(("services", "db", "security"), HTTP_FRAMEWORKS) == {}


def test_only_the_wiring_module_reads_the_app_state() -> None:
    """Routes take their collaborators through `Depends(services)` (which tests
    override); none reaches into `request.app.state`."""
    readers = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != STATE_READER and _APP_STATE.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []
    assert _APP_STATE.search(STATE_READER.read_text(encoding="utf-8"))


def test_tests_reach_the_wiring_through_its_helpers() -> None:
    """Tests read the wired parts through tests/support/wiring.py and swap them with
    dependency overrides; none reaches into the application's state."""
    tests = Path(__file__).resolve().parent
    readers = [
        str(path.relative_to(tests.parent))
        for path in sorted(tests.rglob("*.py"))
        if path != Path(__file__).resolve() and _APP_STATE.search(path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_domain_code_imports_nothing_from_sqlalchemy() -> None:
    """Services and the OAuth layer call the storage ports (db/ports.py); SQL,
    connections and sessions stay in db/."""
    assert offending(("services", "oauth"), ("sqlalchemy",)) == {}


def test_only_the_engine_module_asks_which_database_it_is() -> None:
    """The backend is chosen once (db/engine.py open_database); no caller branches on
    the dialect."""
    asking = re.compile(r"dialect\.name|is_sqlite|get_backend_name")
    askers = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if asking.search(path.read_text(encoding="utf-8"))
    ]
    assert askers == ["userservice/db/engine.py"]


TESTS = Path(__file__).resolve().parent
SUPPORT = TESTS / "support"


def _test_modules() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)


def test_shared_test_helpers_live_only_in_tests_support() -> None:
    """Beside tests/support/, a test folder holds test files, fixtures (conftest.py)
    and packages' __init__.py: a reader knows where a helper is, and finds it once."""
    stray = [
        str(path.relative_to(TESTS.parent))
        for path in _test_modules()
        if SUPPORT not in path.parents
        and not path.name.startswith("test_")
        and path.name not in {"conftest.py", "__init__.py"}
    ]
    assert stray == []


def test_no_test_file_imports_another_test_file_or_a_conftest() -> None:
    """What two test files share moves to tests/support/; fixtures reach tests through
    pytest, never through an import of a conftest or of another test file."""
    importing: dict[str, list[str]] = {}
    for path in _test_modules():
        found = imported(path.read_text(encoding="utf-8"), "tests")
        wrong = sorted(
            name
            for name in found
            if within(name, "tests")
            and any(part.startswith("test_") or part == "conftest" for part in name.split("."))
        )
        if wrong:
            importing[str(path.relative_to(TESTS.parent))] = wrong
    assert importing == {}
