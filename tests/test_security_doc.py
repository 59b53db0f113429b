"""docs/security.md, the code and the tests agree with each other.

Every security id cited in a comment, a docstring or a test's name exists as an entry of
docs/security.md; every entry names test files that exist, and every test file that cites
an id is named by that id's entry, so the document cannot drift from what is tested. The
repository never points at a checklist kept outside it: docs/security.md is the record.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
SCANNED = ("userservice", "tests", "migrations", "bench")

# Areas of the document (A-I, R, S) and the ones not built yet (L, M, O): a citation of
# either must resolve. One or two digits, whole word: `B008`, `ES256`, `%A0` never match.
_LETTERS = "A-ILMNORS"
_ID = re.compile(rf"\b([{_LETTERS}])(\d{{1,2}})\b")
# "C1-C3" or "B3-B8" cites every id between.
_RANGE = re.compile(rf"\b([{_LETTERS}])(\d{{1,2}})\s*[-\u2013]\s*\1(\d{{1,2}})\b")
_TEST_NAME = re.compile(rf"^test_([{_LETTERS.lower()}])(\d{{1,2}})_")

_ENTRY = re.compile(r"^- \*\*([A-Z]\d{1,2})\*\* (.*?)(?=^- |^#|\Z)", re.MULTILINE | re.DOTALL)
_TESTS_LINE = re.compile(r"^\s*Tests: (.+?)\.?\s*$", re.MULTILINE)
_TEST_FILE = re.compile(r"`(tests/[^`]+\.py)`")

# Strings that would make the repository depend on a document it does not contain.
_OUTSIDE = ("SECURITY.md", "DESIGN.md", "shared/")
# A tracker's issue number, or a numbered convention of a design document kept
# elsewhere (samples in the finder's test): the history of a decision belongs in
# commit messages; the code says why in its own terms.
_HISTORY = re.compile(r"\bissues? #?\d|\bDESIGN(?:\.md)?\s+(?:convention|\d)", re.IGNORECASE)
_TEXT_SUFFIXES = {".py", ".md", ".html", ".toml", ".ini", ".txt", ".cfg", ".sh", ".yml", ".yaml"}
_TOP_LEVEL = ("README.md", "Makefile", "Dockerfile", "pyproject.toml", "alembic.ini")


def ids_in_text(text: str) -> set[str]:
    found = {
        f"{letter}{n}"
        for letter, first, last in _RANGE.findall(text)
        for n in range(int(first), int(last) + 1)
    }
    return found | {f"{letter}{number}" for letter, number in _ID.findall(text)}


def prose(source: str) -> Iterator[str]:
    """The comments and docstrings of a module: what it says, not what it does."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            yield ast.get_docstring(node, clean=False) or ""


def cited_ids(source: str) -> set[str]:
    """Ids in comments, docstrings and test names; never in code or other strings."""
    found: set[str] = set()
    for text in prose(source):
        found |= ids_in_text(text)
    for node in ast.walk(ast.parse(source)):
        name = node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else ""
        if match := _TEST_NAME.match(name):
            found.add(f"{match[1].upper()}{match[2]}")
    return found


def ours(path: Path) -> bool:
    """The repository's own files: not caches, nor the environments and results that
    runs create inside it (a hidden .venv, bench's .peer-venv)."""
    parts = path.relative_to(ROOT).parts
    return "__pycache__" not in parts and not any(part.startswith(".") for part in parts)


def python_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            # This file's own comments show examples of ids; they cite nothing.
            if ours(path) and path != Path(__file__).resolve():
                yield path


def citations() -> dict[Path, set[str]]:
    return {path: cited_ids(path.read_text(encoding="utf-8")) for path in python_files()}


def doc_entries() -> dict[str, list[str]]:
    """Id -> the test files its entry names."""
    text = DOC.read_text(encoding="utf-8")
    entries: dict[str, list[str]] = {}
    for ident, body in _ENTRY.findall(text):
        assert ident not in entries, f"{ident} appears twice in docs/security.md"
        tests_line = _TESTS_LINE.search(body)
        entries[ident] = _TEST_FILE.findall(tests_line[1]) if tests_line else []
    return entries


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_citation_finder_reads_comments_docstrings_and_test_names_only() -> None:
    source = '''"""Module (C1-C3, E5)."""
SELECT = "ES256 B008 %ED%A0%80 G4"  # (A12) and S7
def test_b3_something() -> None:
    """R2: waits, then 503."""
    x = 0xA1B2  # hex B2 is a word here, and counts: comments are prose
def test_e2e_flow() -> None: ...
'''
    assert cited_ids(source) == {"C1", "C2", "C3", "E5", "A12", "S7", "B3", "R2", "B2"}


def test_every_cited_id_is_an_entry_of_the_document() -> None:
    entries = doc_entries()
    missing = sorted(
        f"{relative(path)}: {ident}"
        for path, ids in citations().items()
        for ident in ids
        if ident not in entries
    )
    assert not missing, f"ids cited but not in docs/security.md: {missing}"


def test_every_entry_names_test_files_that_exist() -> None:
    entries = doc_entries()
    assert len(entries) > 50, "docs/security.md lost its entries (or their format changed)"
    problems = [ident for ident, files in entries.items() if not files]
    for ident, files in entries.items():
        for name in files:
            path = ROOT / name
            if not (path.is_file() and path.name.startswith("test_")):
                problems.append(f"{ident}: {name}")
    assert not problems, f"entries without an existing test file: {problems}"


def test_every_test_file_that_cites_an_id_is_named_by_its_entry() -> None:
    entries = doc_entries()
    unnamed = sorted(
        f"{ident}: {relative(path)}"
        for path, ids in citations().items()
        if path.name.startswith("test_") and relative(path).startswith("tests/")
        for ident in ids
        if ident in entries and relative(path) not in entries[ident]
    )
    assert not unnamed, f"add these test files to the entries' Tests: lines: {unnamed}"


def _repository_text_files() -> Iterator[Path]:
    for top in (*SCANNED, "docs"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in _TEXT_SUFFIXES and ours(path):
                yield path
    for name in _TOP_LEVEL:
        yield ROOT / name


@pytest.mark.parametrize("needle", _OUTSIDE)
def test_nothing_points_at_a_checklist_outside_the_repository(needle: str) -> None:
    offenders = [
        relative(path)
        for path in _repository_text_files()
        if path.is_file()
        and path != Path(__file__).resolve()
        and needle in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not offenders, f"{needle!r} appears in {offenders}"


def history_references(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if _HISTORY.search(line)]


def test_the_history_finder_knows_issue_numbers_from_prose() -> None:
    # The samples are assembled, so that this file itself names no issue in its text.
    issue = "iss" + "ue"
    source = "\n".join(
        [
            f'"""Module ({issue} 4 profile)."""',
            f"PATTERN = '{issue} 4'  # {issue.title()} 3 item 7",
            "def f() -> None:",
            '    """DESIGN.md convention 6; DESIGN 4; issues 2, point 7."""',
            "    # a grant that issues refresh tokens; the design's 2 paths; ES256",
        ]
    )
    found = [hit for text in prose(source) for hit in history_references(text)]
    assert found == [
        f"# {issue.title()} 3 item 7",
        f"Module ({issue} 4 profile).",
        "DESIGN.md convention 6; DESIGN 4; issues 2, point 7.",
    ]


def test_the_code_names_no_issue_numbers_or_outside_documents() -> None:
    """Comments and docstrings (and the Markdown beside the code) explain a decision in
    the repository's own terms: a profile, an RFC, a docs/security.md id."""
    offenders: list[str] = []
    for top in (*SCANNED, "docs"):
        for path in sorted((ROOT / top).rglob("*")):
            if not ours(path) or path.suffix not in {".py", ".md"}:
                continue
            text = path.read_text(encoding="utf-8")
            # Only prose is checked: this file's patterns and samples are code.
            texts = prose(text) if path.suffix == ".py" else [text]
            offenders += [
                f"{relative(path)}: {hit}" for t in texts for hit in history_references(t)
            ]
    assert not offenders, f"say why without naming an issue or outside document: {offenders}"
