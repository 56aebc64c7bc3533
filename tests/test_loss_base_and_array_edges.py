"""Edges of the Loss base class (nnbackend.loss_base) and of the array libraries'
makers and host copies (nnbackend.backend.libraries, nnbackend.backend.arrays) that a
mutation run of those modules found no test holding: each test fails under a mutant
the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import copy
import sys
import types

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import arrays, libraries
from nnbackend.layers import BatchNorm, Dense
from nnbackend.loss_base import Loss
from nnbackend.sklearn import SumOverOutputs


class Unfinished(Loss):
    """A loss whose author forgot forward and backward."""


def test_a_loss_without_forward_or_backward_says_so(backend):
    """A subclass that defines neither gets NotImplementedError, not a loss of None
    that fit would go on with."""
    # kills loss_base 16 (forward's raise dropped) and 17 (backward's raise dropped)
    pred = backend.asarray(np.zeros((2, 1)))
    with pytest.raises(NotImplementedError):
        Unfinished()(pred, pred)
    with pytest.raises(NotImplementedError):
        Unfinished().backward()


def test_count_correct_of_a_loss_with_no_accuracy_is_refused(backend):
    """MSE counts no right classifications: asking for them names the loss."""
    # kills loss_base 19 (count_correct's raise dropped: it gave None)
    pred = backend.asarray(np.array([[0.2], [0.9]]))
    with pytest.raises(NotImplementedError, match="MSE has no notion of accuracy"):
        nb.losses.MSE().count_correct(pred, pred)


@pytest.mark.parametrize("name", ["mse", "cross_entropy", "binary_cross_entropy"])
def test_backward_before_forward_asks_for_the_forward(name):
    """backward with no forward before it (a fresh loss, or a copy of a used one) is
    an AttributeError that says to call forward first."""
    # kills loss_base 52 (forward_first gave None: "exceptions must derive from
    # BaseException") and 8 (no class-level _grad: "object has no attribute '_grad'")
    fresh = nb.losses.get(name)
    with pytest.raises(AttributeError, match=r"call loss\.forward\(pred, target\) before"):
        fresh.backward()
    used = nb.losses.get(name)
    used.forward(np.array([[0.3, 0.7]]), np.array([[0.0, 1.0]]))
    used.backward()
    with pytest.raises(AttributeError, match="has no forward to differentiate"):
        copy.deepcopy(used).backward()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_an_empty_batch_has_no_loss(backend, reduction):
    """A batch of 0 rows is refused by name with either reduction, not a
    ZeroDivisionError (mean) or a loss of 0 (sum)."""
    # kills loss_base 46 (the empty batch's raise dropped)
    empty = backend.asarray(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="MSE: the batch is empty"):
        nb.losses.MSE(reduction=reduction)(empty, empty)
    labels = backend.asarray(np.zeros((0,), dtype=np.int64))
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy: the batch is empty"):
        nb.losses.SoftmaxCrossEntropy(reduction=reduction)(empty, labels)


def test_targets_take_the_outputs_shape_only_where_a_loss_says_so():
    """The base's default is False (labels are one column for many outputs), and a
    loss that keeps it, wrapped by the scikit-learn heads, keeps it too."""
    # kills loss_base 5 (no class-level targets_like_outputs: the wrap failed)
    assert nb.losses.SoftmaxCrossEntropy().targets_like_outputs is False
    assert SumOverOutputs(nb.losses.SoftmaxCrossEntropy()).targets_like_outputs is False
    assert SumOverOutputs(nb.losses.MSE()).targets_like_outputs is True


def test_a_torch_device_torch_does_not_know_is_a_value_error():
    """'torch:nonsense' is refused in nnbackend's words, not an AttributeError of a
    string that was never made a device."""
    # kills libraries 31 (the RuntimeError of torch.device passed over)
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="torch knows no device 'nonsense'"):
        nb.get_backend("torch:nonsense")


def test_a_torch_tensor_that_needs_its_gradient_comes_to_the_host():
    """to_numpy takes a tensor that records its gradient (torch's numpy() refuses
    one), as its values."""
    # kills libraries 58 (no detach().cpu() before numpy())
    torch = pytest.importorskip("torch")
    tensor = torch.tensor([1.5, -2.0], requires_grad=True)
    np.testing.assert_array_equal(nb.to_numpy(tensor), [1.5, -2.0])


def test_torch_cuda_without_a_number_takes_the_current_gpu(monkeypatch):
    """'torch:cuda' is torch's current GPU by number, and GPU 0 of one is there."""
    # kills libraries 54 (cuda left without an index: check_gpu_number met None) and 74
    # (0 < index: GPU 0 refused)
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert libraries.make_torch("cuda")[1] == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert libraries.make_torch("cuda:0")[1] == torch.device("cuda", 0)


def fake_cupy(monkeypatch, current):
    """A stand-in for CuPy on a machine with two GPUs (no CuPy needed): setDevice
    appends to ``current``, Device() is the current GPU's stand-in "current"."""
    cupy = types.ModuleType("cupy")
    cupy.ndarray, cupy.asnumpy = object, None
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 2, setDevice=current.append)
    device = lambda index="current": index  # noqa: E731
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=device)
    monkeypatch.setattr(libraries, "import_package", lambda name: cupy)
    monkeypatch.setattr(libraries, "cupy_unusable_reason", lambda _: None)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", types.ModuleType("xp"))


def test_cupy_takes_its_current_gpu_gpu_0_and_refuses_a_name(monkeypatch):
    """'cupy' is CuPy's current GPU, left current; 'cupy:0' is GPU 0; 'cupy:one' is
    refused in nnbackend's words."""
    # kills libraries 66 and 67 (no device: int(None) or a None maker), 69 (the
    # ValueError passed over: index unbound) and 74 (0 < index: GPU 0 refused)
    current = []
    fake_cupy(monkeypatch, current)
    assert libraries.make_cupy(None)[1] == "current" and current == []
    assert libraries.make_cupy("0")[1] == 0 and current == [0]
    with pytest.raises(ValueError, match=r"a CuPy device is a GPU number \('cupy:1'\), not 'one'"):
        libraries.make_cupy("one")


def test_gpu_probes_say_yes_where_a_gpu_answers(monkeypatch):
    """cuda_available and torch_cuda_available are True where CuPy's probe finds no
    fault and torch sees CUDA (what 'auto' picks by), and False without CuPy."""
    # kills libraries 89 (cuda_available always None), 87 (None, not False, without
    # CuPy) and 91 (torch installed read as torch missing)
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    monkeypatch.setattr(libraries, "cupy_unusable_reason", lambda _: None)
    assert libraries.cuda_available() is True
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy: ImportError
    assert libraries.cuda_available() is False
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert libraries.torch_cuda_available() is True


def test_package_version_names_the_installed_version():
    """The version `nnbackend info` shows is the installed distribution's."""
    # kills libraries 98 and 99 (no version found for any package)
    assert libraries.package_version("numpy") == np.__version__


def test_arrays_of_one_library_but_two_types_have_one_namespace():
    """A NumPy array with a NumPy scalar, a torch tensor with a torch Parameter: two
    types, one library, so no mismatch."""
    # kills arrays 6 and 7 (any two types refused as two backends)
    numpy = arrays.namespace_of(np.ones(2))
    assert arrays.namespace_of(np.ones(2), np.float64(1.0)) is numpy
    torch = pytest.importorskip("torch")
    tensor, parameter = torch.ones(2), torch.nn.Parameter(torch.ones(2))
    assert arrays.namespace_of(tensor, parameter) is arrays.namespace_of(tensor)


def test_what_is_not_an_array_is_named_as_such():
    """A list is no array: namespace_of and backend_of refuse it by its type."""
    # kills arrays 22 (namespace_of gave None), 35 (read as CuPy's) and 37 (backend_of:
    # name unbound)
    with pytest.raises(nb.BackendMismatchError, match="expected an array, got builtins.list"):
        arrays.namespace_of([1.0, 2.0])
    with pytest.raises(nb.BackendMismatchError, match="list is not an array of a known"):
        arrays.backend_of([1.0, 2.0])


def test_a_cupy_array_belongs_to_the_backend_of_its_gpu(monkeypatch):
    """backend_of names a CuPy array's backend by its GPU's number (no CuPy needed:
    a stand-in of CuPy's module and device)."""
    # kills arrays 36 (no name for a CuPy array)
    CupyArray = type("ndarray", (), {"__module__": "cupy._core.core"})
    array = CupyArray()
    array.device = types.SimpleNamespace(id=1)
    monkeypatch.setattr(arrays, "get_backend", lambda name, dtype: (name, dtype))
    assert arrays.backend_of(array, "float32") == ("cupy:1", "float32")


def test_host_memory_is_the_array_s_own_where_it_has_one_on_the_host(backend):
    """NumPy's array is itself, a CPU tensor's is its memory (a write shows through),
    array-api-strict's and a GPU's are none (None)."""
    # kills arrays 51 to 62, 56 on torch:cuda only (NumPy's and torch's memory not
    # given, strict's asked for)
    a = backend.asarray(np.array([1.0, 2.0]))
    memory = arrays.host_memory(a)
    if backend.name.startswith(("strict", "cupy", "torch:cuda")):
        assert memory is None
        return
    memory[0] = 5.0
    np.testing.assert_array_equal(nb.to_numpy(a), [5.0, 2.0])


def test_a_copy_leaves_out_a_last_batch_kept_with_other_values(backend):
    """BatchNorm keeps its last batch in a tuple with settings (a flag, axes, a
    shape): a copy holds none of it, as it holds no lone array of the batch."""
    # kills arrays 66 (a tuple held arrays only if all its items were arrays)
    model = nb.Sequential([Dense(3, 3), BatchNorm(3)], backend=backend, seed=0)
    model.forward(backend.asarray(np.ones((4, 3))), training=True)
    assert "_cache" in vars(model.layers[1])
    assert "_cache" not in vars(copy.deepcopy(model.layers[1]))


def test_a_model_copied_to_float64_has_float64_weights_and_keeps_int_state(backend):
    """copy(dtype="float64") of a float32 model gives float64 weights, of the same
    values; an integer array (a step count) stays integer."""
    # kills arrays 88 (floats kept their own dtype and integers were made float)
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    twin = model.copy(dtype="float64")
    for name, w in twin.params.items():
        assert w.dtype == backend.xp.float64
        np.testing.assert_array_equal(nb.to_numpy(w), nb.to_numpy(model.params[name]))
    steps = backend.asarray(np.array([3, 4]))
    moved = arrays.carried(steps, backend.with_dtype("float64"))
    assert moved.dtype == steps.dtype
    np.testing.assert_array_equal(nb.to_numpy(moved), [3, 4])


def test_a_training_forward_outside_inference_mode_keeps_the_weights_it_has(backend):
    """Only tensors torch made in inference mode are copied before a training pass:
    the weights a user holds stay the model's own."""
    # kills arrays 81 and 83 (every tensor read as made in inference mode: each
    # training forward copied all weights)
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    weights = model.params["0.W"]
    model.forward(backend.asarray(np.ones((4, 3))), training=True)
    assert model.params["0.W"] is weights
