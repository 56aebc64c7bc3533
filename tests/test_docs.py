"""The code in README.md and docs/ runs as written, and the docs build without a warning.

Every fenced ``python`` block of a page runs, in order, in one namespace (a page reads
as one sitting at a prompt: a later block uses what an earlier one made), in a scratch
folder. A block that needs what this machine may lack says so in an HTML comment on
the line before it, invisible on the rendered page:

    <!-- test: needs-gpu -->      skipped unless a CUDA device answers
    <!-- test: needs-data -->     run with $NNBACKEND_DATA set to the real data, or skipped

A ``text`` block right after a python block is what that block prints, exactly.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import importlib.util
import inspect
import io
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nnbackend as nb
from nnbackend import registry
from tests.conftest import DATA_DIR, HAVE_CUDA

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!-- test: ([\w-]+) -->\n)?```python\n(.*?)```", re.S)
PRINTED = re.compile(r"```python\n((?:(?!```).)*)```\n\s*```text\n(.*?)```", re.S)
REGISTRIES = [registry.LAYERS, registry.LOSSES, registry.OPTIMIZERS, registry.SCHEDULES,
              registry.INITIALIZERS, registry.METRICS, registry.MODELS]  # fmt: skip


def blocks(page: Path) -> list[tuple[int, str | None, str]]:
    """(line number, needs, code) of each python block of ``page``."""
    text = page.read_text()
    return [
        (text.count("\n", 0, m.start(2)) + 1, m.group(1), m.group(2)) for m in BLOCK.finditer(text)
    ]


def printed(page: Path) -> dict[int, str]:
    """Line number of a python block -> the text block after it: what it prints."""
    text = page.read_text()
    return {text.count("\n", 0, m.start(1)) + 1: m.group(2) for m in PRINTED.finditer(text)}


@contextlib.contextmanager
def registries_as_they_were():
    """The pages register example classes: keep them out of the other tests."""
    saved = [(r, dict(r._classes), dict(r._aliases), dict(r._shown)) for r in REGISTRIES]
    try:
        yield
    finally:
        for r, classes, aliases, shown in saved:
            r._classes, r._aliases, r._shown = classes, aliases, shown


def test_the_pages_leave_the_registries_as_they_found_them():
    """The extending page's MaxError stayed in the metrics' shown names, its class gone:
    a later metrics=["max_error"] raised a bare KeyError, not "unknown metric"."""
    before = [dict(r._shown) for r in REGISTRIES]
    with registries_as_they_were():

        @nb.register
        class PageMetric(nb.metrics.Metric):
            name = "page_metric"

            def batch(self, out, target, loss):
                return 0.0, 1

    assert [dict(r._shown) for r in REGISTRIES] == before
    with pytest.raises(registry.UnknownTypeError):
        nb.metrics.get("page_metric")


def unmet(needs: str | None) -> str | None:
    if needs == "needs-gpu" and not HAVE_CUDA:
        return "no CUDA device answers"
    if needs == "needs-data" and not DATA_DIR.is_dir():
        return f"no real data at {DATA_DIR}"
    if needs not in (None, "needs-gpu", "needs-data"):
        return f"unknown marker {needs!r}"
    return None


WITH_CODE = [page for page in PAGES if blocks(page)]


@pytest.mark.parametrize("page", WITH_CODE, ids=[str(p.relative_to(ROOT)) for p in WITH_CODE])
def test_every_python_block_runs_as_written(page, tmp_path, monkeypatch):
    found, shown = blocks(page), printed(page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNBACKEND_DATA", str(DATA_DIR))
    namespace = {"__name__": f"page_{page.stem}"}
    skipped = []
    with registries_as_they_were():
        for line, needs, code in found:
            reason = unmet(needs)
            assert not (reason or "").startswith("unknown"), f"{page.name}:{line}: {reason}"
            if reason:
                skipped.append(f"line {line}: {reason}")
                continue
            output = io.StringIO()
            try:
                with contextlib.redirect_stdout(output):
                    exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name}, the block at line {line} fails") from exc
            if line in shown:
                assert output.getvalue() == shown[line], (
                    f"{page.name}: the block at line {line} prints something other than "
                    "the text block after it"
                )
    if skipped:
        pytest.skip(f"ran the rest; skipped {'; '.join(skipped)}")


WITH_EXAMPLES = sorted(
    path for path in (ROOT / "nnbackend").rglob("*.py") if ">>> " in path.read_text()
)


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=[p.name for p in WITH_EXAMPLES])
def test_every_docstring_example_runs_as_written(path):
    """functional.py's example used an ``xp`` it never made: the API page showed code
    that raised NameError."""
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_readme_loop_runs_on_float64_host_data():
    """The hand-written loop once failed as written: float64 host data into a float32
    model's forward. The README's blocks now run; this one is checked on its own too."""
    code = "\n".join(code for _, _, code in blocks(ROOT / "README.md")[:2])
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["X"].dtype == "float64" and namespace["model"].backend.dtype_name == "float32"
    assert namespace["model"].evaluate(namespace["X"], namespace["y"])["accuracy"] > 0.95


NEEDS_MKDOCS = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs need mkdocs and mkdocstrings: pip install -e '.[docs]'",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The docs, built once with mkdocs build --strict: a broken link, a missing page or
    an API entry that does not resolve is an error. Offline: nothing in mkdocs.yml
    fetches from the network."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@NEEDS_MKDOCS
def test_the_docs_build_without_a_warning(site):
    api = (site / "api" / "model" / "index.html").read_text()
    assert "predict_proba" in api and "Host data in, host NumPy out" in api


def public_names() -> list[tuple[str, str, object]]:
    """(module, name, object) for every name in the ``__all__`` of nnbackend's modules
    (those that import here: nnbackend.sklearn needs scikit-learn)."""
    import nnbackend

    modules = ["nnbackend"]
    modules += [m.name for m in pkgutil.walk_packages(nnbackend.__path__, "nnbackend.")]
    found = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found += [(name, n, getattr(module, n)) for n in getattr(module, "__all__", ())]
    return found


def _shown_as(module: str, name: str, obj) -> set[str] | None:
    """The headings that document ``obj``: its public path or where it is defined; a
    constant (which knows no module) under a submodule of ``module``, else None."""
    if inspect.ismodule(obj):
        return {obj.__name__}
    if getattr(obj, "__module__", None) is None or not hasattr(obj, "__qualname__"):
        return None
    return {f"{module}.{name}", f"{obj.__module__}.{obj.__qualname__}"}


@NEEDS_MKDOCS
def test_every_public_name_has_an_entry_in_the_api_reference(site):
    """A name without a docstring is left out of the reference without a warning: every
    name of every ``__all__`` must have a heading of its own."""
    ids = set()
    for page in site.rglob("*.html"):
        ids |= set(re.findall(r'id="(nnbackend[\w.]*)"', page.read_text()))
    missing = []
    for module, name, obj in public_names():
        shown = _shown_as(module, name, obj)
        if shown is None:
            found = any(i.startswith(module + ".") and i.endswith("." + name) for i in ids)
        else:
            found = bool(shown & ids)
        if not found:
            missing.append(f"{module}.{name}")
    assert not missing, f"give these a docstring and a page (docs/api/): {missing}"
    members = [f"nnbackend.layers.Layer.{m}" for m in ("forward", "backward", "config")]
    members += [f"nnbackend.loss_base.Loss.{m}" for m in ("forward", "backward", "link", "config")]
    members += [f"nnbackend.Sequential.{m}" for m in ("count_params", "copy_params", "set_params")]
    members += ["nnbackend.Sequential.n_inputs", "nnbackend.Sequential.n_outputs"]
    members += [f"nnbackend.testing.report.Report.{m}" for m in ("rows", "failures", "ok", "table")]
    members += ["nnbackend.History.history", "nnbackend.init.Initializer.std",
                "nnbackend.optim_base.Optimizer.current_lr"]  # fmt: skip
    # what the guide tells a subclass to set: documented in docstrings after them (the
    # reference drops #: comments without a word)
    set_by_subclasses = ("stochastic", "draws_on_device", "grad_buffers", "integer_state")
    members += [f"nnbackend.layers.Layer.{m}" for m in set_by_subclasses]
    members += [f"nnbackend.optim_base.Optimizer.{m}"
                for m in ("slots", "elementwise", "steady", "counts_on_device")]  # fmt: skip
    members += ["nnbackend.loss_base.Loss.target_kind", "nnbackend.loss_base.Loss.has_accuracy"]
    assert not set(members) - ids, (
        "what a subclass writes or sets, or a user calls, has an entry",
        set(members) - ids,
    )
