"""The examples run whole, on every CPU backend, and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, *args: str, max_steps: int | None = None) -> str:
    env = dict(os.environ)
    if max_steps is not None:
        env["NNBACKEND_MAX_STEPS"] = str(max_steps)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart_learns_the_moons(backend):
    out = run_example("quickstart.py", "--backend", backend.name)
    name, accuracy = out.strip().rsplit(": ", 1)
    assert name == f"training accuracy on {backend.name}"
    assert float(accuracy) >= 0.97


def test_quickstart_honours_the_environment_variable(monkeypatch):
    monkeypatch.setenv("NNBACKEND", "strict")
    out = run_example("quickstart.py", max_steps=5)
    assert out.startswith("training accuracy on strict: ")


def test_an_unknown_backend_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--backend", "cuda"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    expected = "error: unknown backend 'cuda': choose one of numpy, strict, torch, cupy, auto"
    assert expected in result.stderr
