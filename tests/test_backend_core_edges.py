"""Edges of the backend seam (nnbackend.backend.core) and of the GPU description of
``nnbackend info`` (backend/inventory.py) that a mutation run of the two found no test
holding: each test fails under a mutant the rest of the suite let pass (the comments
name them)."""

from __future__ import annotations

import re
import sys
import threading
import time
import types

import array_api_strict
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import core as backend_core
from nnbackend.backend.inventory import _device_description


def test_a_backend_reads_as_its_name_dtype_and_device():
    """repr names the backend, its float dtype and its device (a repr of None is a
    TypeError in every print and error message that shows a backend)."""
    # kills core 7 (__repr__ gave None)
    assert repr(nb.get_backend("numpy", "float64")) == (
        "Backend('numpy', dtype='float64', device='cpu')"
    )


def test_get_dtype_gives_the_backends_dtype_objects(backend):
    """No dtype is the backend's float dtype, not NumPy's default float64; a name or a
    NumPy dtype is the backend's dtype object of that name."""
    # kills core 17 (get_dtype(None) fell through to np.dtype(None), float64)
    xp = backend.xp
    assert backend.get_dtype() == xp.float32
    assert backend.with_dtype("float64").get_dtype() == xp.float64
    assert backend.get_dtype("int64") == xp.int64
    assert backend.get_dtype(np.float64) == xp.float64
    assert backend.get_dtype(np.dtype("uint8")) == xp.uint8


def test_only_libraries_whose_slices_are_views_say_they_have_them(backend):
    """NumPy, torch and CuPy share a reshaped slice's memory, so a fit there trains
    through the flat buffer; array-api-strict promises no views and trains weight by
    weight (test_flat reads has_views for its expectations, so holds neither value)."""
    # kills core 10 (has_views gave None), 11 (in -> not in) and 12 (split(':')[1])
    expected = backend.name.split(":")[0] != "strict"
    assert backend.has_views is expected
    model = nb.Sequential([nb.layers.Dense(3, 1)], backend=backend, seed=0)
    X, y = np.ones((4, 3)), np.ones((4, 1))
    model.fit(X, y, loss="mse", optimizer=nb.optim.SGD(lr=0.1), epochs=1, verbose=0)
    assert (model._flat is not None) is expected


def test_only_torch_has_an_inference_mode(backend):
    """torch's inference_mode makes arrays that refuse in-place updates outside it."""
    # kills core 13 (has_inference_mode gave None), 14 (== -> !=) and 15 (split(':')[1])
    assert backend.has_inference_mode is backend.name.startswith("torch")


def test_a_model_moved_to_a_backend_object_takes_its_dtype(backend):
    """Moved by name a float64 model stays float64; moved to a Backend object it takes
    that Backend's dtype, as to() and copy() say, not the model's."""
    # kills core 28 (and -> or) and 29 (only "dtype is None" kept): the object's
    # float32 was overridden by the model's float64; 30 (only the isinstance kept): a
    # dtype named with the name was overridden too; 31-33: by name it became float32
    model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, dtype="float64", seed=0)
    assert model.copy(backend.name).backend.dtype_name == "float64"
    assert model.copy(backend).backend.dtype_name == "float32"
    assert model.copy(backend.name, dtype="float32").backend.dtype_name == "float32"
    assert model.to(backend).backend is backend
    assert model.params["0.W"].dtype == backend.xp.float32


def test_bringing_another_backends_array_home_is_refused():
    """to_numpy and to_floats take only this backend's arrays, each of them: NumPy's
    would read a strict array silently, hiding a model on the wrong backend, and
    strict's stack would fail in its own words."""
    # kills core 79 (to_numpy's check_array dropped) and 88 (to_floats' check on NumPy)
    numpy_backend, strict = nb.get_backend("numpy"), nb.get_backend("strict")
    foreign = strict.asarray(np.array(1.5))
    with pytest.raises(nb.backend.BackendMismatchError, match="Move it first"):
        numpy_backend.to_numpy(foreign)
    for values in ([foreign], [np.float32(0.5), foreign]):
        with pytest.raises(nb.backend.BackendMismatchError, match="Move it first"):
            numpy_backend.to_floats(values)
    for values in ([np.float32(0.5)], [strict.asarray(np.array(0.5)), np.float32(0.5)]):
        with pytest.raises(nb.backend.BackendMismatchError, match="a numpy.float32"):
            strict.to_floats(values)


def test_scalars_of_one_dtype_come_to_the_host_in_order(backend):
    """Floats alone (one dtype, one stack) come back as they were, in their order."""
    # kills core 103 (the one stack read as stacked[1]: an IndexError off NumPy)
    x = backend.asarray(np.array([0.5, -1.25, 3.0]))
    xp = backend.xp
    assert backend.to_floats([xp.sum(x), x[1], x[0]]) == [2.25, -1.25, 0.5]


def test_a_backend_owns_only_its_own_arrays_on_its_own_device():
    """owns (what fit and the scikit-learn heads ask before taking data as it is) is
    true of this library's arrays on this device only, and false of host lists."""
    # kills core 112 (owns gave None), 113 (and -> or: a list has no .device), 114 (the
    # device not compared) and 115 (the type not checked), 116 (== -> !=)
    numpy_backend, strict = nb.get_backend("numpy"), nb.get_backend("strict")
    other_device = nb.get_backend("strict:device1")
    x = strict.asarray(np.ones(2))
    assert strict.owns(x) is True
    assert other_device.owns(x) is False
    assert numpy_backend.owns(x) is False
    assert strict.owns(np.ones(2)) is False
    assert strict.owns([1.0, 2.0]) is False


def test_cpu_backends_report_no_free_device_memory(backend):
    """free_memory is a GPU's free bytes; on the CPU it is None (host memory)."""
    # kills core 122 (base not read: NameError), 123 (split(':')[1]) and 124 (== -> !=:
    # NumPy's device read as a CuPy device)
    if backend.name in ("cupy", "torch:cuda"):
        assert backend.free_memory() > 0
    else:
        assert backend.free_memory() is None


def test_host_floats_take_the_dtype_asked_for(backend):
    """A dtype named in asarray wins over the backend's float32 for host floats too."""
    # kills core 55 (the float test alone kept: float64 asked for, float32 given)
    assert backend.asarray(np.array([1.5]), dtype="float64").dtype == backend.xp.float64
    assert backend.asarray([1.5, 2.5], dtype="float64").dtype == backend.xp.float64


def test_a_tensor_that_requires_grad_is_taken_out_of_autograds_sight():
    """A torch input that requires grad comes in detached: a tracked one made torch
    track every weight it met."""
    # kills core 41 (detached dropped)
    torch = pytest.importorskip("torch")
    x = nb.get_backend("torch").asarray(torch.ones(2, requires_grad=True))
    assert x.requires_grad is False


# --- choosing a backend and its dtype, a device's dtypes, a GPU described ---------


class Info:
    """A namespace's inspection object whose dtypes answer in turn from ``answers``."""

    def __init__(self, answers):
        self.answers = answers

    def dtypes(self, device=None):
        return self.answers.pop(0)


class Namespace:
    """A stand-in array library: only a name and an inspection object."""

    __name__ = "fake_namespace"

    def __init__(self, answers):
        self.info = Info(answers)

    def __array_namespace_info__(self):
        return self.info


def test_a_dtype_outside_the_standard_is_refused_not_taken_as_the_default():
    """with_dtype(np.float16) is an error: the standard has no float16, and a name of
    None made the backend's default float32 without a word."""
    # kills core 145 (dtype_name's raise dropped: it gave None)
    numpy_backend = nb.get_backend("numpy")
    with pytest.raises(ValueError, match="^dtype must be 'float32' or 'float64', not <class"):
        numpy_backend.with_dtype(np.float16)
    with pytest.raises(ValueError, match="is not a dtype of the Array API standard"):
        backend_core.dtype_name(numpy_backend.xp, np.dtype("float16"))


def test_with_dtype_takes_the_float_dtypes_of_any_library(backend):
    """A Backend object with NumPy's, strict's or its own float64 (as get_backend by name
    takes them): the model built on it is float64; it once said that NumPy's float64
    "is not a dtype of the Array API standard" on strict and torch."""
    for dtype in (np.float64, np.dtype("float64"), array_api_strict.float64, backend.xp.float64):
        assert backend.with_dtype(dtype) is nb.get_backend(backend.name, dtype="float64")
        model = nb.Sequential([nb.layers.Dense(2, 2)], backend=backend, dtype=dtype)
        assert model.params["0.W"].dtype == backend.xp.float64
    assert backend.with_dtype(np.float32).dtype == backend.xp.float32


class TorchDtype:
    """A dtype object known by its text, as torch's are (``str(torch.int64)`` is
    "torch.int64"), without torch, which CI does not install."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def test_asarray_takes_any_librarys_dtype_object_and_names_one_outside_the_standard(backend):
    """asarray(data, dtype=torch.int64 or strict's int64) on any backend is that dtype
    (torch's and strict's objects were said to be outside the standard on NumPy, and
    strict's compared against NumPy's with a warning); bfloat16 is outside it."""
    int64s = (np.int64, np.dtype("int64"), array_api_strict.int64, TorchDtype("torch.int64"))
    for dtype in int64s:
        assert backend.asarray([1, 2], dtype=dtype).dtype == backend.xp.int64
    ones = backend.asarray(np.ones(2), dtype=TorchDtype("torch.float64"))
    assert ones.dtype == backend.xp.float64
    with pytest.raises(ValueError, match=r"^torch.bfloat16 is not a dtype of the Array API"):
        backend.asarray([1.0], dtype=TorchDtype("torch.bfloat16"))


def test_a_devices_dtypes_are_asked_once_unless_it_gave_none(monkeypatch):
    """An empty answer (a device that made no array) is passed on but not kept, so the
    next call asks again; a real answer is kept, and the device is not asked again."""
    # kills core 150 (not dropped: the empty answer kept), 151 (the empty answer kept),
    # 152 (None for the empty answer) and 153 (nothing kept: asked every time)
    monkeypatch.setattr(backend_core, "_DEVICE_DTYPES", {})
    float32_only = {"float32": "f4"}
    xp = Namespace([{}, float32_only, {"float64": "f8"}])
    assert backend_core.device_dtypes(xp, "gpu0") == {}
    assert backend_core.device_dtypes(xp, "gpu0") == float32_only
    assert backend_core.device_dtypes(xp, "gpu0") == float32_only
    assert xp.info.answers == [{"float64": "f8"}]


def test_a_dtype_asked_for_without_a_backend_is_taken():
    """get_backend(dtype="float64") with no backend chosen anywhere is NumPy in
    float64, not NumPy in its default float32."""
    # kills core 238 (and <-> or) and 240 (only the chosen dtype, always None, kept)
    backend = nb.get_backend(dtype="float64")
    assert backend.name == "numpy"
    assert backend.dtype_name == "float64"
    assert backend.asarray([0.5]).dtype == np.float64


def test_a_backend_named_by_something_else_than_a_string_is_a_type_error():
    """A number as the name is told how backends are named, not that an int has no
    attribute strip."""
    # kills core 166 (_parse's type check dropped)
    with pytest.raises(TypeError, match="a backend is named by a string such as 'numpy'"):
        nb.get_backend(42)
    with pytest.raises(TypeError, match="not 42"):
        nb.set_backend(42)
    assert nb.get_backend().name == "numpy"


def test_a_dtype_given_as_the_backends_own_dtype_object_is_taken(backend):
    """dtype=torch.float64 (or strict's, or NumPy's float64 type) names float64 as well
    as the string does: torch's and strict's read as "torch.float64", whose last part
    is the name."""
    # kills core 212 (rsplit(".", 0): the whole "torch.float64" read as the name) and
    # 214 ([0]: "torch" read as the name)
    for dtype in (backend.xp.float64, backend.xp.float32):
        chosen = nb.get_backend(backend.name, dtype=dtype)
        assert chosen is backend.with_dtype(dtype)
        assert chosen.dtype == dtype
    assert nb.get_backend(backend.name, dtype=backend.xp.float64).dtype_name == "float64"


def test_info_describes_a_gpu_by_its_number_name_and_memory(monkeypatch):
    """python -m nnbackend info names a CuPy GPU's number, name (bytes from CUDA) and
    memory, and a torch GPU's device, name and memory (stand-ins here: no GPU needed)."""
    # kills inventory 20-25 (the CuPy branch: skipped, or its name, memory or text lost)
    # and 32-34 (the torch branch: skipped, its properties lost, or None)
    props = {"name": b"Fake GPU"}
    runtime = types.SimpleNamespace(getDeviceProperties=lambda number: props)
    monkeypatch.setitem(
        sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    )
    device = types.SimpleNamespace(id=1, mem_info=(2 * 2**30, 8 * 2**30))
    cupy_backend = backend_core.Backend("cupy:1", None, device, None, (), None)
    assert _device_description(cupy_backend) == "cuda:1 Fake GPU, 8.0 GiB (2.0 free)"
    torch = pytest.importorskip("torch")
    gpu = types.SimpleNamespace(name="Fake H100", total_memory=16 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: gpu)
    torch_backend = backend_core.Backend("torch:cuda", None, torch.device("cuda:0"), None, (), None)
    assert _device_description(torch_backend) == "cuda:0 Fake H100, 16.0 GiB"


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_an_input_of_another_float_dtype_is_told_how_to_convert(backend, dtype):
    """float16 (no dtype of the standard) gets the same error as float64: the dtype it
    has and how to convert it, not that float16 is outside the standard."""
    if not hasattr(backend.xp, dtype):
        pytest.skip(f"{backend.name} has no {dtype}")
    model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, seed=0)
    x = backend.xp.ones((3, 2), dtype=getattr(backend.xp, dtype))
    with pytest.raises(TypeError, match=f"input has dtype {dtype}, but the model computes"):
        model.forward(x)


def _hint(error: Exception) -> str:
    """The call a BackendMismatchError tells the user to make, as written."""
    return re.search(r"(?:e\.g\. |Move it with )(.*?), or ", str(error))[1]


def test_the_mismatch_hints_run_as_written_and_the_model_takes_what_they_give():
    """The other library's hint made a float32 array, which a float64 model refused; the
    other device's named x.to_device, which torch tensors and CuPy arrays lack."""
    import array_api_compat  # noqa: F401  (the device hint's)

    model = nb.Sequential([nb.layers.Dense(2, 3)], seed=0, dtype="float64")
    x = array_api_strict.asarray(np.ones((4, 2)))
    with pytest.raises(
        nb.backend.BackendMismatchError, match="is an array_api_strict.Array"
    ) as info:
        model.forward(x)
    moved = eval(_hint(info.value), {"nb": nb, "x": x})
    assert model.forward(moved).shape == (4, 3)
    model = nb.Sequential([nb.layers.Dense(2, 3)], seed=0, backend="strict")
    x = array_api_strict.asarray(
        np.ones((4, 2), np.float32), device=array_api_strict.Device("device1")
    )
    with pytest.raises(nb.backend.BackendMismatchError, match="on device") as info:
        model.forward(x)
    assert "x.to_device" not in str(info.value)
    moved = eval(_hint(info.value), {"nb": nb, "x": x, "array_api_compat": array_api_compat})
    assert model.forward(moved).shape == (4, 3)


def test_threads_asking_first_for_a_backend_get_the_same_one(monkeypatch):
    """The cache was checked, then filled, with no lock: each thread built its own
    Backend, and `model.backend is strict` failed for models built in them."""
    make = backend_core.MAKERS["numpy"]
    slow = lambda device: (time.sleep(0.05), make(device))[1]  # noqa: E731
    monkeypatch.setitem(backend_core.MAKERS, "numpy", slow)
    monkeypatch.setattr(backend_core, "_cache", {})
    barrier, got = threading.Barrier(4), []

    def ask():
        barrier.wait()
        got.append(nb.get_backend("numpy"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and all(backend is nb.get_backend("numpy") for backend in got)


def test_a_blank_nnbackend_is_unset_as_an_empty_one_is(monkeypatch):
    monkeypatch.setattr(backend_core, "_chosen", [])
    monkeypatch.setenv("NNBACKEND", "  ")
    assert nb.get_backend().name == "numpy"


def test_a_device_without_int64_is_refused_up_front():
    """array-api-strict's no_x64 device was taken, and every fit and predict then
    stopped in its int64 labels; its float64 hint (--dtype float32) led to the same."""
    try:
        array_api_strict.Device("no_x64")
    except ValueError:
        pytest.skip("this array-api-strict has no no_x64 device")
    with pytest.raises(ValueError, match="has no int64, which nnbackend's labels and indices"):
        nb.Sequential([nb.layers.Dense(2, 2)], backend="strict:no_x64", seed=0)
