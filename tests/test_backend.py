"""The backend seam: choosing, errors with a way out, host transfers, seeded draws."""

from __future__ import annotations

import ast
import importlib.machinery
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import backend as backend_module
from nnbackend.backend import core as backend_core
from tests.conftest import CPU_BACKEND_NAMES, CPU_BACKENDS, HAVE_CUDA, HAVE_TORCH

# --- choosing ---------------------------------------------------------------------


def test_default_is_numpy_float32():
    be = nb.get_backend()
    assert be.name == "numpy"
    assert be.dtype_name == "float32"


def test_precedence_argument_context_set_env_default(monkeypatch):
    assert nb.get_backend().name == "numpy"  # default
    monkeypatch.setenv("NNBACKEND", "strict")
    assert nb.get_backend().name == "strict"  # env beats default
    nb.set_backend("numpy")
    assert nb.get_backend().name == "numpy"  # set_backend beats env
    with nb.use_backend("strict"):
        assert nb.get_backend().name == "strict"  # context beats set_backend
        with nb.use_backend("numpy"):
            assert nb.get_backend().name == "numpy"  # innermost context wins
        assert nb.get_backend().name == "strict"
        assert nb.get_backend("numpy").name == "numpy"  # explicit argument beats all
    assert nb.get_backend().name == "numpy"
    nb.reset_backend()
    assert nb.get_backend().name == "strict"  # env applies again


def test_env_var_set_after_first_use_still_applies(monkeypatch):
    assert nb.get_backend().name == "numpy"
    monkeypatch.setenv("NNBACKEND", "strict")
    assert nb.get_backend().name == "strict"


def test_a_bad_env_var_is_named_in_the_error(monkeypatch):
    # the user may have named no backend: the error said nothing of where 'gpu' came from
    monkeypatch.setenv("NNBACKEND", "gpu")
    with pytest.raises(ValueError, match=r"unknown backend 'gpu'.*named by \$NNBACKEND='gpu'"):
        nb.get_backend()
    assert nb.get_backend("numpy").name == "numpy"  # a backend named in the call is read alone
    monkeypatch.setenv("NNBACKEND", "strict")
    with pytest.raises(ValueError, match=r"not 'float8'$"):  # the caller's, not the variable's
        nb.get_backend(dtype="float8")


def test_dtypes_as_numpy_types_are_taken():
    assert nb.get_backend("numpy", dtype=np.float64).dtype_name == "float64"
    assert nb.get_backend("strict", dtype=np.dtype("float32")).dtype_name == "float32"


def test_env_var_read_in_a_fresh_process():
    code = (
        "import nnbackend as nb, os; os.environ['NNBACKEND']='strict'; print(nb.get_backend().name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "strict"


def test_a_backend_object_is_as_good_as_its_name(backend):
    """use_backend and set_backend take the Backend itself (once an AttributeError:
    'Backend' object has no attribute 'strip'), with or without another dtype."""
    with nb.use_backend(backend) as chosen:
        assert chosen is backend and nb.get_backend() is backend
        assert nb.Sequential([nb.layers.Dense(2, 2)]).backend is backend
    with nb.use_backend(backend, dtype="float64"):
        assert nb.get_backend() is backend.with_dtype("float64")
    assert nb.set_backend(backend) is backend and nb.get_backend() is backend


def test_use_backend_restores_after_an_error():
    with pytest.raises(KeyError), nb.use_backend("strict"):
        raise KeyError
    assert nb.get_backend().name == "numpy"


def test_backends_are_cached_and_carry_dtype():
    assert nb.get_backend("numpy") is nb.get_backend("numpy")
    be64 = nb.get_backend("numpy", dtype="float64")
    assert be64.dtype_name == "float64"
    assert be64 is nb.get_backend("numpy").with_dtype("float64")
    nb.set_backend("strict", dtype="float64")
    assert nb.get_backend().dtype_name == "float64"
    assert nb.get_backend(dtype="float32").dtype_name == "float32"


def test_names_are_read_whatever_their_case_but_strict_devices_keep_theirs():
    assert nb.get_backend("NumPy").name == "numpy"
    assert (
        str(nb.get_backend("strict:CPU_DEVICE").device) == "array_api_strict.Device('CPU_DEVICE')"
    )
    assert nb.get_backend("Strict:device1").name == "strict:device1"
    if HAVE_TORCH:
        assert nb.get_backend("Torch:CPU").name == "torch:cpu"


def test_auto_falls_back_to_numpy_without_a_gpu(monkeypatch):
    monkeypatch.setattr(backend_core, "cuda_available", lambda: False)
    monkeypatch.setattr(backend_core, "torch_cuda_available", lambda: False)
    assert nb.get_backend("auto").name == "numpy"


@pytest.mark.parametrize(
    "torch_gpu, cupy_gpu, device, chosen",
    [
        (True, True, None, ("torch", "cuda")),  # both: torch, the faster (README)
        (True, True, "1", ("torch", "cuda:1")),
        (True, False, None, ("torch", "cuda")),
        (False, True, "1", ("cupy", "1")),
        (False, False, "1", ("numpy", None)),
    ],
)
def test_auto_takes_torch_on_the_gpu_then_cupy_then_numpy(
    monkeypatch, torch_gpu, cupy_gpu, device, chosen
):
    monkeypatch.setattr(backend_core, "torch_cuda_available", lambda: torch_gpu)
    monkeypatch.setattr(backend_core, "cuda_available", lambda: cupy_gpu)
    assert backend_core._auto(device) == chosen


def test_torch_without_cuda_or_not_installed_is_no_gpu(monkeypatch):
    from nnbackend.backend.libraries import torch_cuda_available

    if HAVE_TORCH:
        import torch

        assert torch_cuda_available() == torch.cuda.is_available()
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    assert torch_cuda_available() is False


def test_a_torch_that_fails_to_answer_is_no_gpu_for_auto(monkeypatch):
    """A torch whose CUDA query raises (a driver or library missing) leaves "auto" to
    look further, as CuPy's failures do, instead of failing every "auto"."""

    def is_available():
        raise RuntimeError("libcudart.so: cannot open shared object file")

    broken = types.ModuleType("torch")
    broken.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    broken.cuda = types.SimpleNamespace(is_available=is_available)
    monkeypatch.setitem(sys.modules, "torch", broken)
    monkeypatch.setattr(backend_core, "cuda_available", lambda: False)
    assert nb.backend.torch_cuda_available() is False
    assert backend_core._auto(None) == ("numpy", None)


def test_available_backends_lists_numpy_and_strict():
    names = nb.available_backends()
    assert names[:2] == ["numpy", "strict"]
    assert ("torch" in names) == HAVE_TORCH


# --- errors with a way out --------------------------------------------------------


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown backend 'nmupy'.*numpy, strict, torch, cupy, auto"
    ):
        nb.get_backend("nmupy")
    with pytest.raises(ValueError, match="unknown backend"):
        nb.set_backend("jax")


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.setattr(backend_core, "_cache", {})
    with pytest.raises(nb.BackendUnavailableError, match=r"needs the package 'torch'.*pip install"):
        nb.get_backend("torch")


def test_missing_cupy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend_core, "_cache", {})
    with pytest.raises(nb.BackendUnavailableError, match=r"nnbackend\[gpu\].*cupy-cuda13x"):
        nb.get_backend("cupy")
    monkeypatch.setattr(backend_core, "torch_cuda_available", lambda: False)
    assert nb.get_backend("auto").name == "numpy"


def _cupy_without_device(error: Exception | None):
    """A stand-in for CuPy installed on a machine with no usable GPU."""
    cupy = types.ModuleType("cupy")

    def zeros(_):
        raise error

    cupy.cuda = types.SimpleNamespace(is_available=lambda: error is not None)
    cupy.zeros = zeros
    return cupy


@pytest.mark.parametrize(
    "error, reason",
    [
        (None, "is_available"),
        (
            RuntimeError("cudaErrorInsufficientDriver: driver version is insufficient"),
            "cudaErrorInsufficientDriver",
        ),
    ],
)
def test_cupy_without_a_device_fails_up_front(monkeypatch, error, reason):
    monkeypatch.setitem(sys.modules, "cupy", _cupy_without_device(error))
    monkeypatch.setattr(backend_core, "_cache", {})
    with pytest.raises(nb.BackendUnavailableError, match=f"no CUDA device answers.*{reason}"):
        nb.set_backend("cupy")
    monkeypatch.setattr(backend_core, "torch_cuda_available", lambda: False)
    assert nb.get_backend("auto").name == "numpy"
    assert "cupy" not in nb.available_backends()


def test_a_numbered_cupy_gpu_is_made_current(monkeypatch):
    """CuPy makes arrays and runs kernels on its current GPU, not on the device an
    array is asked for: 'cupy:1' had the flat buffers and kernel outputs on GPU 0."""
    pytest.importorskip("array_api_compat.cupy")  # CuPy installed; no GPU needed
    from nnbackend.backend import libraries

    current = []
    cupy = types.ModuleType("cupy")
    cupy.ndarray, cupy.asnumpy = object, None
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 2, setDevice=current.append)
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=lambda index=None: index)
    monkeypatch.setattr(libraries, "import_package", lambda name: cupy)
    monkeypatch.setattr(libraries, "cupy_unusable_reason", lambda _: None)
    assert libraries.make_cupy("1")[1] == 1 and current == [1]
    with pytest.raises(nb.BackendUnavailableError, match="asks for GPU 2, but this machine has 2"):
        libraries.make_cupy("2")
    assert current == [1]


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device answers (CuPy)")
def test_a_model_on_the_second_gpu_keeps_everything_there():
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one GPU here")
    X = np.random.default_rng(0).normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    model = nb.Sequential([nb.layers.Dense(4, 8), "relu", nb.layers.Dense(8, 2)], "cupy:1")
    model.fit(X, y, loss="softmax_cross_entropy", optimizer=nb.optim.Adam(0.01), epochs=2)
    arrays = [*model.params.values(), *model.grads.values()]
    assert {a.device.id for a in arrays} == {1}


def test_strict_runs_without_the_standards_optional_parts():
    """Every strict test runs so (conftest): nnbackend leans on no data-dependent shape,
    boolean mask or extension, and on nothing past the 2024.12 standard."""
    import array_api_strict as strict

    from tests.conftest import STRICT_FLAGS

    flags = strict.get_array_api_strict_flags()
    assert flags == {**STRICT_FLAGS, "enabled_extensions": ()}
    x = strict.asarray([1.0, -1.0])
    with pytest.raises(RuntimeError, match="data-dependent shapes"):
        strict.nonzero(x > 0)


def test_torch_cuda_without_a_gpu_says_so():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(nb.BackendUnavailableError, match="torch sees no CUDA device"):
        nb.get_backend("torch:cuda")


def test_dtype_other_than_float32_or_64_is_refused():
    """float16, and a name with text before the dot, which was cut off and taken."""
    for dtype in ("float16", "x.float64", "numpy.float64", np.float16, int):
        with pytest.raises(ValueError, match="'float32' or 'float64'"):
            nb.get_backend("numpy", dtype=dtype)


def test_python_float_is_float64_as_asarray_has_it(backend):
    """dtype=float was refused by the backend and the model, taken by asarray."""
    assert nb.get_backend(backend.name, dtype=float).dtype_name == "float64"
    assert backend.asarray([1.0], dtype=float).dtype == backend.xp.float64


def test_uniform_draws_take_any_librarys_dtype_object(backend):
    """Generator.uniform took NumPy's float64 on NumPy alone (normal took it anywhere)."""
    xs = pytest.importorskip("array_api_strict")
    for dtype in (np.float64, np.dtype("float64"), xs.float64, "float64"):
        draws = nb.Generator(0).uniform((3,), backend=backend, dtype=dtype)
        assert draws.dtype == backend.xp.float64
        host = nb.Generator(0).uniform((3,), backend="numpy", dtype="float64")
        assert nb.to_numpy(draws).tolist() == host.tolist()


def test_device_without_float64_says_so():
    said = r"has no float64: use float32 \(dtype='float32'; --dtype float32 on the command"
    with pytest.raises(ValueError, match=said):
        nb.get_backend("strict:no_float64", dtype="float64")
    assert not nb.get_backend("strict:no_float64").supports("float64")


def test_arrays_of_two_backends_in_one_call():
    a = nb.get_backend("numpy").asarray([1.0])
    b = nb.get_backend("strict").asarray([1.0])
    with pytest.raises(
        nb.BackendMismatchError, match="two backends.*numpy.ndarray.*array_api_strict"
    ):
        backend_module.namespace_of(a, b)
    assert isinstance(nb.BackendMismatchError("x"), TypeError)


def test_array_of_another_backend_is_refused_not_copied():
    strict = nb.get_backend("strict")
    x = nb.get_backend("numpy").asarray([1.0])
    with pytest.raises(nb.BackendMismatchError, match="numpy.ndarray.*'strict' backend"):
        strict.check_array(x)
    with pytest.raises(nb.BackendMismatchError, match="strict"):
        nb.get_backend("numpy").asarray(strict.asarray([1.0]))


def test_array_on_another_device_is_refused():
    import array_api_strict

    on_device1 = array_api_strict.asarray([1.0], device=array_api_strict.Device("device1"))
    with pytest.raises(nb.BackendMismatchError, match="on device.*device1"):
        nb.get_backend("strict").check_array(on_device1, "input")


# --- host transfers ---------------------------------------------------------------


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "uint8", "bool"])
def test_host_round_trip_is_exact(name, dtype):
    host = np.random.default_rng(1).normal(size=(5, 7)) * 1e3
    host = (host > 0) if dtype == "bool" else host.astype(dtype)
    be = nb.get_backend(name, dtype=dtype if dtype.startswith("float") else None)
    back = be.to_numpy(be.asarray(host))
    assert back.dtype == host.dtype
    assert back.tobytes() == host.tobytes()
    assert nb.to_numpy(be.asarray(host)).tobytes() == host.tobytes()


def test_asarray_gives_floats_the_backends_dtype(backend):
    x = backend.asarray(np.array([[1.0, 2.0]]))
    assert x.dtype == backend.xp.float32
    assert backend.asarray(x) is x  # already there: no copy
    assert backend.asarray(np.arange(3)).dtype == backend.xp.int64
    assert backend.asarray(x, dtype="float64").dtype == backend.xp.float64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reversed_and_read_only_host_arrays_are_taken_as_they_read(backend, dtype):
    """torch refuses NumPy's negative strides and byte-swapped arrays, and warns of
    read-only memory (a memmap), which it must still share: a copy took a 299 MiB memmap
    into 790 MiB of RAM."""
    be = backend.with_dtype(dtype)
    host = np.arange(12.0).reshape(4, 3)
    frozen = host.astype(dtype)
    frozen.setflags(write=False)
    swapped = np.arange(5, dtype=">i8")
    for odd in (host[::-1], np.flip(host), host[:, ::-2], frozen, np.arange(5)[::-1], swapped):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert be.to_numpy(be.asarray(odd)).tolist() == odd.tolist()
    if be.name == "torch":
        assert be.asarray(frozen).data_ptr() == frozen.ctypes.data


def test_taking_host_data_leaves_pythons_warn_once_memory_alone(backend):
    """catch_warnings around every torch transfer reset it: a warning meant to show once
    came again after each epoch."""

    def warn():
        warnings.warn("once from here", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        for _ in range(3):
            warn()
            backend.asarray(np.arange(6.0))
    assert [str(w.message) for w in shown] == ["once from here"]


@pytest.mark.parametrize(
    "call",
    [
        lambda xp, a: xp.sum(a), lambda xp, a: xp.sum(a, axis=1, keepdims=True),
        lambda xp, a: xp.sum(xp.astype(a > 0, xp.int8)), lambda xp, a: xp.max(a, axis=0),
        lambda xp, a: xp.min(a), lambda xp, a: xp.argmax(a, axis=1),
        lambda xp, a: xp.argmax(a, axis=1, keepdims=True), lambda xp, a: xp.astype(a, xp.float32),
        lambda xp, a: xp.isdtype(a.dtype, "real floating"),
        lambda xp, a: xp.isdtype(a.dtype, ("integral", "bool")),
        lambda xp, a: xp.reshape(a, (5, 4)), lambda xp, a: xp.reshape(a, (-1,), copy=True),
        lambda xp, a: xp.count_nonzero(a > 0),
        lambda xp, a: xp.count_nonzero(a > 0, axis=1, keepdims=True),
        lambda xp, a: xp.sum(xp.astype(a, xp.float32), axis=1, dtype=xp.float64),
        lambda xp, a: xp.min(a, axis=1, keepdims=True),
    ],
)  # fmt: skip
def test_lean_numpy_namespace_agrees_with_array_api_compat(call):
    import array_api_compat.numpy as compat

    lean = nb.get_backend("numpy").xp
    a = np.random.default_rng(0).normal(size=(4, 5))
    got, want = np.asarray(call(lean, a)), np.asarray(call(compat, a))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_transfers_are_counted(backend):
    x = backend.asarray(np.ones(3))
    with nb.count_host_transfers() as transfers:
        backend.to_numpy(x)
        backend.to_float(backend.xp.sum(x))
    assert transfers.count == 2


def test_nested_transfer_counters_each_count_and_a_closed_one_stops():
    backend = nb.get_backend("numpy")
    x = backend.asarray(np.ones(3))
    with nb.count_host_transfers() as outer:
        backend.to_numpy(x)
        with nb.count_host_transfers() as inner:
            backend.to_numpy(x)
        backend.to_numpy(x)
    backend.to_numpy(x)
    assert (outer.count, inner.count) == (3, 1)


def test_the_lean_numpy_reshape_without_a_copy_refuses_one_it_would_need():
    from nnbackend.backend.numpy_fast import namespace as lean

    with pytest.raises(ValueError):
        lean.reshape(np.arange(6.0).reshape(2, 3).T, (6,), copy=False)


def test_many_scalars_come_to_the_host_in_one_transfer(backend):
    """Losses (floats) and counts (integers), interleaved: floats in their order."""
    xp, x = backend.xp, backend.asarray(np.array([0.5, -1.25, 3.0]))
    scalars = [xp.sum(x), xp.count_nonzero(x > 0), x[1], xp.max(x), xp.count_nonzero(x)]
    with nb.count_host_transfers() as transfers:
        got = backend.to_floats(scalars)
    assert got == [2.25, 2.0, -1.25, 3.0, 3.0] and transfers.count == 1
    assert backend.to_floats([]) == []
    big = xp.asarray(2**24 + 1, dtype=xp.int64)  # a count past float32's whole numbers
    assert backend.to_floats([xp.sum(x), big])[1] == 2**24 + 1


# --- seeded draws -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_seed_gives_the_same_draws_on_every_backend(dtype):
    draws = {}
    for name in CPU_BACKEND_NAMES:
        rng = nb.Generator(42)
        be = nb.get_backend(name, dtype=dtype)
        w = rng.normal((4, 3), std=0.5, backend=be)
        u = rng.uniform((2,), -1, 1, backend=be)
        assert w.dtype == getattr(be.xp, dtype)
        draws[name] = be.to_numpy(w).tobytes() + be.to_numpy(u).tobytes()
    assert len(draws) >= 2
    assert len(set(draws.values())) == 1, draws.keys()


def test_generator_state_restores_the_sequence():
    rng = nb.Generator(3)
    rng.permutation(10)
    saved = rng.state
    first = rng.permutation(10)
    rng.state = saved
    np.testing.assert_array_equal(rng.permutation(10), first)


# --- info and purity --------------------------------------------------------------


def test_info_lists_backends_and_devices():
    out = subprocess.run(
        [sys.executable, "-m", "nnbackend", "info"], capture_output=True, text=True, check=True
    ).stdout
    assert "current backend: numpy" in out
    assert f"'auto' takes: {nb.get_backend('auto').name} (torch:cuda, else cupy," in out
    table = out.split("\n\n")[1].splitlines()[1:]  # between the header and the threads line
    lines = {line.split()[0]: line for line in table}
    assert "available" in lines["numpy"] and "float32" in lines["numpy"] and "cpu" in lines["numpy"]
    assert "available" in lines["strict"] and "CPU_DEVICE" in lines["strict"]
    assert ("available" in lines["torch"]) == HAVE_TORCH
    assert set(lines) == {"numpy", "strict", "torch", "torch:cuda", "cupy"}
    footer = out.split("\n\n")[2].splitlines()
    assert footer[0].startswith("CPU threads: auto (")
    assert footer[1].startswith("BLAS: ")  # and, where OpenBLAS could do better, a hint


# The edges that may talk to an array library directly: the backend seam (and its lean
# NumPy namespace), the host-side data and file modules (checkpoints and the untrusted-HDF5
# reader among them), plotting, and the command line.
EDGE_MODULES = {
    "data.py",
    "data_checks.py",
    "io.py",
    "checkpoint.py",
    "h5safe.py",
    "h5text.py",
    "plot.py",
    "__main__.py",
}
# nnbackend.testing compares host copies of the results with NumPy, as a test does.
EDGE_PACKAGES = {"backend", "datasets", "testing"}


def test_core_modules_import_no_array_library():
    package = Path(nb.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name in EDGE_MODULES or path.parent.name in EDGE_PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in {"numpy", "cupy", "torch"}
            ]
    assert not offenders, offenders


def test_a_gpu_that_is_not_there_is_named_with_the_ones_that_are(monkeypatch):
    """CUDA fails only at the first array, and torch's dtype probe then found none:
    'torch:cuda:7' on a one-GPU machine said it had no float32."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(nb.BackendUnavailableError, match=r"asks for GPU 7, but this machine has 1"):
        nb.get_backend("torch:cuda:7")


@pytest.mark.parametrize(
    "name, message",
    [
        ("numpy:gpu", "the numpy backend has only the device 'cpu'"),
        ("torch:meta", "nnbackend runs torch on 'cpu' or 'cuda', not 'meta'"),
        ("strict:cpu_device", r"no device 'cpu_device' \(names keep their case\).*'CPU_DEVICE'"),
        ("auto:junk", r"'auto' takes a GPU's number \('auto:1'\), not 'junk'"),
        ("auto:²", r"'auto' takes a GPU's number \('auto:1'\), not '²'"),  # isdigit() said yes
    ],
)
def test_a_device_the_library_does_not_run_on_is_refused(name, message):
    """Each names what it takes: 'auto:junk' ran NumPy without a word, and strict's own
    error did not say which devices it has."""
    package = {"torch": "torch", "strict": "array_api_strict"}.get(name.split(":")[0])
    if package:
        pytest.importorskip(package)
    with pytest.raises(ValueError, match=message):
        nb.get_backend(name)


def test_a_backend_package_that_fails_to_load_is_unavailable_not_a_crash(monkeypatch):
    """torch installed but missing a CUDA library raises OSError on import: that came
    as a traceback from `nnbackend info` and --backend torch, the command meant to say
    which backends work printing nothing."""
    import importlib

    from nnbackend.__main__ import info

    real_import = importlib.import_module

    def broken(name, *args):
        if name.partition(".")[0] == "torch":
            raise OSError("libcudnn.so.9: cannot open shared object file")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    monkeypatch.setattr(backend_core, "_cache", {})
    with pytest.raises(nb.BackendUnavailableError, match="installed but failed to import"):
        nb.get_backend("torch")
    text = info()
    assert "numpy" in text and "libcudnn.so.9" in text
    # CuPy without its CUDA runtime raises ImportError: installed too, not missing

    def no_cuda_runtime(name, *args):
        raise ImportError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setattr(importlib, "import_module", no_cuda_runtime)
    with pytest.raises(nb.BackendUnavailableError, match="installed but failed.*libcudart"):
        backend_module.libraries.import_package("cupy")


@pytest.mark.skipif(HAVE_CUDA, reason="a CUDA device answers here")
def test_cupy_without_a_gpu_says_what_to_ask_for_in_code_and_on_the_command_line():
    """It said "Use --backend numpy" to an estimator's backend="cupy" too."""
    pytest.importorskip("cupy")
    with pytest.raises(nb.BackendUnavailableError, match=r"no CUDA device answers") as told:
        nb.get_backend("cupy")
    assert "backend='auto', --backend auto" in str(told.value)


# A backend's package that is installed but whose own import fails for a module it needs
# (ModuleNotFoundError naming that other module, as torch raises for a missing
# 'typing_extensions') is said to be installed but failing to import, with the missing
# module named, not said to be missing itself.


def test_a_missing_dependency_is_not_called_a_missing_package(monkeypatch):
    real_import = importlib.import_module

    def broken(name, *args):
        if name.partition(".")[0] == "array_api_strict":
            raise ModuleNotFoundError("No module named 'its_dependency'", name="its_dependency")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(nb.BackendUnavailableError, match="installed but failed to import") as e:
        backend_module.libraries.import_package("strict")
    assert "its_dependency" in str(e.value) and "not installed" not in str(e.value)


def test_the_package_itself_missing_is_called_not_installed(monkeypatch):
    real_import = importlib.import_module
    module = backend_module.libraries.PACKAGES["strict"][0]

    def missing(name, *args):
        if name == module:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(nb.BackendUnavailableError, match="which is not installed"):
        backend_module.libraries.import_package("strict")
