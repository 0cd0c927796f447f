"""Without Ray installed, ``--engine ray`` is one line saying what to install, and nothing is
written (Ray is hidden from the child process by a ``ray`` package that fails to import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CORPUS, ROOT


@pytest.mark.parametrize("command", [["index", str(CORPUS)], ["serve", "--port", "0"]])
def test_engine_ray_without_ray_is_one_line(tmp_path: Path, command: list[str]) -> None:
    hidden = tmp_path / "hide" / "ray"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    path = os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", str(ROOT))])
    env = {**os.environ, "PYTHONPATH": path, "QA_INDEX_DIR": str(tmp_path / "index")}
    done = subprocess.run(
        [sys.executable, "-m", "qa", *command, "-c", "docs", "--engine", "ray"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: the Ray engine needs Ray: pip install -e '.[ray]'"
    ]
    assert not (tmp_path / "index" / "docs").exists()
