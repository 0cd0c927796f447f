"""The code stays lint-clean, formatted, and in small pieces (the house rules of the README)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
CHECKED = ("qa", "scripts")


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    return subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_check_is_clean() -> None:
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def _python_files() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (ROOT / folder).rglob("*.py"))


def test_modules_and_functions_are_small() -> None:
    """Modules of at most 400 lines and functions of at most 60, so each piece can be read at once."""
    too_long = []
    for path in _python_files():
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT).as_posix()
        if len(source.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name} ({len(source.splitlines())} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, "split these:\n" + "\n".join(too_long)


def test_lower_packages_never_import_higher_ones() -> None:
    """Data flows one way: ingest, encoding -> store -> search -> feedback -> service -> generation
    -> http, cli, evaluation."""
    order = [
        "config",
        "errors",
        "ingest",
        "encoding",
        "store",
        "search",
        "access",
        "feedback",
        "service",
        "generation",
        "http",
        "cli",
        "evaluation",
    ]
    rank = {name: i for i, name in enumerate(order)}
    rank.update({"config": -2, "errors": -1})
    allowed_upward = {
        ("evaluation", "cli"),
        ("cli", "evaluation"),
    }  # qa eval: the command and its library
    problems = []
    for path in sorted((ROOT / "qa").rglob("*.py")):
        parts = path.relative_to(ROOT / "qa").with_suffix("").parts
        own = parts[0]
        if own not in rank:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa."):
                other = node.module.split(".")[1]
                if other in rank and rank[other] > rank[own] and (own, other) not in allowed_upward:
                    problems.append(f"{path.relative_to(ROOT)}: {own} imports {node.module}")
    assert not problems, "\n".join(problems)
