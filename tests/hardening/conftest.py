"""Adversarial inputs to the real commands: each test states the one line it expects, the exit
code, and that nothing outside the data folder changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from emochat.cli import main


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, names, files in os.walk(root):
        if Path(folder) == skip or skip in Path(folder).parents:
            names[:] = []
            continue
        for name in [*files, *names]:
            path = Path(folder) / name
            if path == skip:
                continue
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def run(tmp_path: Path, private_home: Path, capsys) -> Callable[..., tuple[int, str, str]]:
    """Run ``emochat ARGS``; returns (exit code, stdout, stderr) and fails the test if anything
    outside the data folder (EMOCHAT_HOME) appeared or changed under the test's folder."""

    def invoke(*args: str) -> tuple[int, str, str]:
        before = _tree(tmp_path, private_home)
        code = main(list(args))
        captured = capsys.readouterr()
        assert _tree(tmp_path, private_home) == before, "a file outside the data folder changed"
        return code, captured.out, captured.err

    return invoke


def one_line(stderr: str) -> str:
    """The last line of stderr, after checking it is the only error line and no traceback."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("emochat: ")]
    errors = [line for line in errors if not line.startswith("emochat: warning")]
    assert len(errors) == 1, stderr
    return errors[0]
