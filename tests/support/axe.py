"""axe-core from npm, pinned by tests/web/axe/package-lock.json and installed with
`npm ci` into that folder's (git-ignored) node_modules the first time it is needed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

AXE_DIR = Path(__file__).resolve().parents[1] / "web" / "axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# node_modules was installed from this lock: a changed lock installs again.
_STAMP = AXE_DIR / "node_modules" / ".lock-sha256"
# Only what breaks the page for someone fails the test; "moderate" and "minor"
# findings are reported by axe but are advice (axe-core's impact levels).
FAILING_IMPACTS = ("serious", "critical")


def axe_source() -> str:
    """The axe-core script; runs `npm ci` when it is missing or stale. Fails (never
    skips) when npm is not installed: CI installs it (scripts/system-deps.sh)."""
    lock = hashlib.sha256((AXE_DIR / "package-lock.json").read_bytes()).hexdigest()
    fresh = AXE_SCRIPT.exists() and _STAMP.exists() and _STAMP.read_text() == lock
    if not fresh:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "npm is missing: install Debian's nodejs and npm (bash scripts/system-deps.sh)",
                pytrace=False,
            )
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=AXE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not AXE_SCRIPT.exists():
            pytest.fail(f"npm ci in {AXE_DIR} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
        _STAMP.write_text(lock)
    return AXE_SCRIPT.read_text(encoding="utf-8")


def violations(page: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the loaded page (WCAG 2.x A
    and AA rules and axe's best practices). The script is evaluated through the
    DevTools protocol, which the page's CSP (script-src none) does not govern."""
    page.evaluate(source)
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in found if v.get("impact") in FAILING_IMPACTS]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        targets = [" ".join(map(str, node.get("target", []))) for node in violation["nodes"]]
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} at {targets}")
    return "\n".join(lines)
