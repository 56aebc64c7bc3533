"""Checkpoints from a stranger: a corpus of malformed and crafted files, each built here,
each refused with a CheckpointError that names the file and the problem. Files that
try to read another file are shown to reach it through plain h5py, and their bytes
appear nowhere in what nnbackend gives back.

The cases that would allocate gigabytes run in a child process whose address space
is capped at 1 GiB: they must end in CheckpointError, not MemoryError.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zlib

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import h5child
from nnbackend.h5text import write_text
from nnbackend.layers import Dense, ReLU
from tests.conftest import CPU_BACKEND_NAMES

ROOT = os.path.dirname(os.path.dirname(__file__))
# float32 values a checkpoint would happily take as weights: if a load followed the
# trick, these would be the model's weights
SECRET = (np.arange(16, dtype=np.float32) + np.float32(4242.125)).reshape(2, 8)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real checkpoint: Adam state, epoch, loss, generator and EarlyStopping's state."""
    folder = tmp_path_factory.mktemp("good")
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], seed=0)
    model.fit(
        X,
        y,
        loss=nb.losses.SoftmaxCrossEntropy(),
        optimizer=nb.optim.Adam(0.01),
        epochs=3,
        batch_size=20,
        verbose=0,
        validation_split=0.25,
        callbacks=[nb.callbacks.EarlyStopping(patience=5)],
        checkpoint=folder / "good.h5",
    )
    return folder / "good.h5"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """Other files a crafted checkpoint might try to read."""
    folder = tmp_path_factory.mktemp("secrets")
    (folder / "secret.bin").write_bytes(SECRET.tobytes())
    with h5py.File(folder / "secret.h5", "w") as f:
        f["data"] = SECRET
        f["weights/0.W"] = SECRET
    return folder


def test_the_good_checkpoint_loads(good):
    model, opt, epoch = nb.load(good, with_optimizer=True)
    assert epoch == 2 and opt.iterations == 6 and list(model.params) == ["0.W", "0.b", "2.W", "2.b"]


# --- the corpus -------------------------------------------------------------------
# Each case: (id, mutation, what the message must say). A mutation edits the copy of
# the good file with h5py ("r+"); a "raw" one rewrites its bytes.


def attr(where, name, value):
    def mutate(f, secrets):
        if value is DELETE:
            del f[where].attrs[name]
        else:
            f[where].attrs[name] = value

    return mutate


DELETE = object()


# Texts are written back as nb.save writes them (fixed-length); ``attr`` writes h5py's
# default, a variable-length string, as older files hold, read by a child process.
def architecture(change):
    def mutate(f, secrets):
        config = json.loads(f.attrs["architecture"])
        change(config)
        write_text(f, "architecture", json.dumps(config))

    return mutate


def architecture_text(old, new):
    def mutate(f, secrets):
        write_text(f, "architecture", f.attrs["architecture"].decode().replace(old, new))

    return mutate


def json_attr(where, name, change):
    def mutate(f, secrets):
        config = json.loads(f[where].attrs[name])
        result = change(config)
        write_text(f[where], name, json.dumps(config if result is None else result))

    return mutate


def layer(i, **values):
    return architecture(lambda c: c["layers"][i].update(values))


def replace(name, data=None, **create):
    def mutate(f, secrets):
        del f[name]
        if data is not None:
            f[name] = data
        else:
            f.create_dataset(name, **create)

    return mutate


def add(name, data=None, **create):
    def mutate(f, secrets):
        if data is not None:
            f[name] = data
        else:
            f.create_dataset(name, **create)

    return mutate


def delete(name):
    def mutate(f, secrets):
        del f[name]

    return mutate


def raw(change):
    def mutate(path):
        path.write_bytes(change(path.read_bytes()))

    mutate.raw = True
    return mutate


def sparse_weights(f, secrets):
    """A chunked weight with one of its two chunks written: the other reads as the fill
    value, so a tiny file could declare a huge array that is never stored."""
    del f["weights/0.W"]
    weight = f.create_dataset("weights/0.W", (2, 8), "f4", chunks=(1, 8), fillvalue=7.0)
    weight[0] = 1.0


def dims_past_maxdims(data: bytes) -> bytes:
    """The first (2, 8) dataspace's current size raised past its maximum: h5py's
    KeyError, which must come out as a CheckpointError."""
    dims = np.array([2, 8, 2, 8], "<u8").tobytes()
    assert dims in data
    return data.replace(dims, np.array([3, 8, 2, 8], "<u8").tobytes(), 1)


def hard_link_weight(f, secrets):
    """EarlyStopping's best 0.W as a second name of the weight itself: no new bytes,
    but one more array to read (64 such links made a 55 KB file load 67 copies)."""
    del f["callbacks/EarlyStopping/0.W"]
    f["callbacks/EarlyStopping/0.W"] = f["weights/0.W"]


def nested(depth):
    return "[" * depth + "]" * depth


# the tricks that try to read another file: each reaches SECRET through plain h5py
def external_storage(f, secrets):
    del f["weights/0.W"]
    f.create_dataset(
        "weights/0.W",
        shape=(2, 8),
        dtype="<f4",
        external=[(str(secrets / "secret.bin"), 0, SECRET.nbytes)],
    )


def external_link(f, secrets):
    del f["weights/0.W"]
    f["weights/0.W"] = h5py.ExternalLink(str(secrets / "secret.h5"), "/data")


def external_group(f, secrets):
    del f["weights"]
    f["weights"] = h5py.ExternalLink(str(secrets / "secret.h5"), "/weights")


def virtual_dataset(f, secrets):
    del f["weights/0.W"]
    layout = h5py.VirtualLayout(shape=(2, 8), dtype="f4")
    layout[:] = h5py.VirtualSource(str(secrets / "secret.h5"), "data", shape=(2, 8))
    f.create_virtual_dataset("weights/0.W", layout)


def virtual_elsewhere(f, secrets):
    layout = h5py.VirtualLayout(shape=(2, 8), dtype="f4")
    layout[:] = h5py.VirtualSource(str(secrets / "secret.h5"), "data", shape=(2, 8))
    f.create_virtual_dataset("notes", layout)


def soft_link(f, secrets):
    f["stash"] = SECRET
    del f["weights/0.W"]
    f["weights/0.W"] = h5py.SoftLink("/stash")


def soft_link_elsewhere(f, secrets):
    f["elsewhere"] = h5py.SoftLink("/weights")


def plugin_filter(f, secrets):
    del f["weights/0.W"]
    f.create_dataset(
        "weights/0.W", data=SECRET, chunks=(1, 8), compression=32004, allow_unknown_filter=True
    )


def deflate_bomb(f, secrets):
    """A 64-byte weight whose one chunk's stream inflates to 16 MiB: HDF5 inflated all of
    it (1 GiB from a 1 MB file) before it kept the chunk's 64 bytes."""
    zeros = zlib.compressobj(9)
    bomb = zeros.compress(bytes(16 << 20)) + zeros.flush()
    del f["weights/0.W"]
    packed = f.create_dataset("weights/0.W", (2, 8), "f4", chunks=(2, 8), compression="gzip")
    packed.id.write_direct_chunk((0, 0), bomb)


def deflate_bomb_in_the_last_chunk(f, secrets):
    """The bomb in the last of 16 chunks: every chunk is checked, in one walk of the
    chunk index (asking for each by its number walked it from the start each time)."""
    zeros = zlib.compressobj(9)
    bomb = zeros.compress(bytes(16 << 20)) + zeros.flush()
    del f["weights/0.W"]
    packed = f.create_dataset("weights/0.W", data=SECRET, chunks=(1, 1), compression="gzip")
    packed.id.write_direct_chunk((1, 7), bomb)


def lzf(f, secrets):
    del f["weights/0.W"]
    f.create_dataset("weights/0.W", data=SECRET, chunks=(1, 8), compression="lzf")


def scaleoffset(f, secrets):
    """HDF5's own filter, built in: it was said to need a plugin."""
    del f["weights/0.W"]
    f.create_dataset("weights/0.W", data=SECRET, chunks=(1, 8), scaleoffset=2)


FILE_TRICKS = {
    "external-storage": (external_storage, "keeps its bytes in another file"),
    "external-link": (external_link, "is an external link"),
    "external-group-link": (external_group, "is an external link"),
    "virtual-dataset": (virtual_dataset, "is virtual"),
    "virtual-dataset-elsewhere": (virtual_elsewhere, "is virtual"),
    "soft-link": (soft_link, "is a soft link"),
    "plugin-filter": (plugin_filter, "filter 32004, which would need a plugin"),
    "scaleoffset": (scaleoffset, "filter 6, HDF5's scaleoffset, which nnbackend does not read"),
    "deflate-bomb": (deflate_bomb, "a compressed chunk that inflates past its size of 68 bytes"),
    "deflate-bomb-last": (deflate_bomb_in_the_last_chunk, "inflates past its size of 8 bytes"),
    "lzf": (lzf, "filter 32000, h5py's lzf, whose decoder a crafted chunk keeps busy"),
}

HUGE = dict(shape=(20000, 20000), dtype="f4")  # 1.6 GB declared, nothing written

CASES = {
    # the file as a whole
    "text-file": (raw(lambda b: b"these are not weights\n"), "not a readable HDF5 file"),
    "empty-file": (raw(lambda b: b""), "not a readable HDF5 file"),
    "truncated": (raw(lambda b: b[: len(b) // 2]), "truncated|damaged"),
    "tail-cut": (raw(lambda b: b[:-64]), "truncated|damaged|differ"),
    # header
    "format-other": (attr("/", "format", "keras"), "not an nnbackend checkpoint"),
    "format-missing": (attr("/", "format", DELETE), "lacks format"),
    "format-number": (attr("/", "format", 7), "should be a single str"),
    "version-missing": (attr("/", "format_version", DELETE), "lacks format_version"),
    "version-newer": (attr("/", "format_version", 2), "format 2, newer than the 1"),
    "version-zero": (attr("/", "format_version", 0), "format_version 0 is not"),
    "version-negative": (attr("/", "format_version", -5), "format_version -5 is not"),
    "version-absurd": (attr("/", "format_version", 2**62), "format_version 4611686018427387904 "),
    "version-string": (attr("/", "format_version", "1"), "should be a single int"),
    "version-float": (attr("/", "format_version", 1.5), "should be a single int"),
    "version-array": (attr("/", "format_version", [1, 1]), "should be a single int"),
    "dtype-float16": (attr("/", "dtype", "float16"), "is not 'float32' or 'float64'"),
    "dtype-number": (attr("/", "dtype", 32), "should be a single str"),
    "dtype-missing": (attr("/", "dtype", DELETE), "lacks dtype"),
    "weights-missing": (delete("weights"), "lacks weights"),
    "weights-a-dataset": (replace("weights", np.zeros(3)), "/weights is not a group"),
    # architecture
    "arch-missing": (attr("/", "architecture", DELETE), "lacks architecture"),
    "arch-not-json": (attr("/", "architecture", "{"), "architecture is not valid JSON"),
    "arch-a-list": (attr("/", "architecture", "[]"), "not a model's config"),
    "arch-100000-deep": (attr("/", "architecture", nested(100000)), "nested deeper than 64"),
    "arch-2-mib": (attr("/", "architecture", " " * (2 << 20)), "longer than 1048576"),
    "arch-huge-integer": (  # named before Python's 4300-digit limit, which offers to lift it
        architecture_text('"n_out": 8', '"n_out": ' + "9" * 5000),
        "not valid JSON .an integer of 5000 digits, past Python's limit of 4300",
    ),
    "arch-nan": (attr("/", "architecture", '{"layers": [], "x": NaN}'), "not valid JSON"),
    "arch-overflowing-float": (
        architecture_text('{"type": "ReLU"}', '{"type": "LeakyReLU", "alpha": 1e999}'),
        "1e999 overflows to inf",
    ),
    "arch-other-model": (architecture(lambda c: c.update(type="Functional")), "unknown model"),
    "arch-layers-not-list": (architecture(lambda c: c.update(layers={"0": {}})), "list of layers"),
    "arch-unknown-layer": (layer(1, type="Evil"), "unknown layer type 'Evil'"),
    "arch-layer-a-string": (
        architecture(lambda c: c["layers"].__setitem__(1, "ReLU")),
        "must be a dict",
    ),
    "dense-n_in-0": (layer(0, n_in=0), "n_in must be at least 1, got 0"),
    "dense-n_in-negative": (layer(0, n_in=-3), "n_in must be at least 1"),
    "dense-n_in-string": (layer(0, n_in="2"), "n_in must be an integer"),
    "dense-n_in-float": (layer(0, n_in=2.5), "n_in must be an integer"),
    "dense-n_in-bool": (layer(0, n_in=True), "n_in must be an integer"),
    "dense-n_out-huge": (
        architecture(
            lambda c: (c["layers"][0].update(n_out=10**30), c["layers"][2].update(n_in=10**30))
        ),
        r"declares 2\*\*63 weights or more; it is damaged",  # no max_params= to offer
    ),
    "dense-20000x20000": (
        architecture(
            lambda c: (
                c["layers"][0].update(n_in=20000, n_out=20000),
                c["layers"][2].update(n_in=20000),
            )
        ),
        "more than max_params",
    ),
    "dense-sizes-do-not-chain": (layer(2, n_in=5), "gives 8 features but the next"),
    "dense-bias-string": (layer(0, bias="yes"), "bias must be True or False"),
    "dense-unknown-argument": (layer(0, evil=1), "bad arguments for Dense"),
    "dense-unknown-init": (layer(0, init={"name": "magic"}), "unknown initialiser type"),
    "dense-init-negative-std": (layer(0, init={"name": "normal", "std": -1}), "std must be"),
    "dense-init-not-a-dict": (layer(0, init=[1, 2]), "an initialiser is given as an object"),
    "leaky-alpha-nan-string": (
        architecture(lambda c: c["layers"].__setitem__(1, {"type": "LeakyReLU", "alpha": "nan"})),
        "alpha must be a real number",
    ),
    "leaky-alpha-list": (
        architecture(lambda c: c["layers"].__setitem__(1, {"type": "LeakyReLU", "alpha": [0.1]})),
        "alpha must be a real number",
    ),
    "arch-stored-as-number": (attr("/", "architecture", 5), "should be a single str"),
    # loss
    "loss-not-json": (attr("/", "loss", "{{"), "loss is not valid JSON"),
    "loss-unknown": (json_attr("/", "loss", lambda c: c.update(type="Evil")), "unknown loss"),
    "loss-reduction": (
        json_attr("/", "loss", lambda c: c.update(reduction="max")),
        "reduction must be one of",
    ),
    "loss-from-logits-string": (
        json_attr("/", "loss", lambda c: c.update(from_logits="false")),
        "from_logits must be True or False",
    ),
    "loss-a-list": (attr("/", "loss", "[1]"), "must be a dict"),
    # weights
    "weight-missing": (delete("weights/2.b"), "do not match the architecture's"),
    "weight-extra": (add("weights/9.W", np.zeros((2, 2), "f4")), "do not match.*param_shapes"),
    "weight-transposed": (
        replace("weights/0.W", np.zeros((8, 2), "f4")),
        r"has shape \(8, 2\), but the architecture needs \(2, 8\)",
    ),
    "weight-scalar": (replace("weights/0.b", np.float32(1)), r"has shape \(\)"),
    "weight-integers": (replace("weights/0.W", np.zeros((2, 8), "i4")), "int32 values"),
    "weight-complex": (replace("weights/0.W", np.zeros((2, 8), "c8")), "complex64 values"),
    "weight-strings": (
        replace("weights/0.b", np.array(["a"] * 8, dtype=h5py.string_dtype())),
        "variable-length strings .*, but floats are expected",
    ),
    "weight-compound": (
        replace("weights/0.b", np.zeros(8, dtype=[("a", "f4"), ("b", "f4")])),
        "values, but floats",
    ),
    "weight-enum": (  # h5py shows it as uint8: "holds uint8 values" named no enum
        replace("weights/0.b", shape=(8,), dtype=h5py.enum_dtype({"a": 0}, basetype="u1")),
        r"/weights/0.b holds HDF5 enum values \(of uint8\), but floats are expected",
    ),
    "weight-long-double": (
        replace("weights/0.b", np.zeros(8, np.longdouble)),
        "values, but floats",
    ),
    "weight-a-group": (
        lambda f, s: (f.__delitem__("weights/0.b"), f.create_group("weights/0.b")),
        "is a group, not a dataset",
    ),
    "weight-nan": (replace("weights/0.W", np.full((2, 8), np.nan, "f4")), "16 NaN or infinite"),
    "weight-inf": (replace("weights/2.b", np.array([1, np.inf], "f4")), "1 NaN or infinite"),
    "weight-never-written": (
        replace("weights/0.W", shape=(2, 8), dtype="f4"),
        "declares 64 bytes but the file stores 0",
    ),
    "weight-huge-never-written": (replace("weights/0.W", **HUGE), r"has shape \(20000, 20000\)"),
    "weight-chunks-unwritten": (
        replace("weights/0.W", shape=(2, 8), dtype="f4", chunks=(1, 8), compression="gzip"),
        "stores 0 of its 2 chunks",
    ),
    "weight-huge-chunks": (
        replace(
            "weights/0.W",
            data=None,
            shape=(2, 8),
            maxshape=(None, None),
            chunks=(1024, 1024),
            dtype="f4",
        ),
        "chunks of 4194304 bytes",
    ),
    # running state
    "state-unexpected": (add("state/0.mean", np.zeros(8, "f4")), "the state saved"),
    "state-a-dataset": (replace("state", np.zeros(2)), "/state is not a group"),
    # optimizer
    "opt-config-not-json": (attr("optimizer", "config", "nope"), "optimizer is not valid JSON"),
    "opt-config-missing": (attr("optimizer", "config", DELETE), "optimizer/@config is missing"),
    "opt-unknown": (
        json_attr("optimizer", "config", lambda c: c.update(type="Evil")),
        "unknown optimizer type 'Evil'",
    ),
    "opt-lr-infinite-string": (
        json_attr("optimizer", "config", lambda c: c.update(lr="inf")),
        "learning rate must be a real number",
    ),
    "opt-lr-infinity": (
        attr("optimizer", "config", '{"type": "Adam", "lr": Infinity}'),
        "not valid JSON",
    ),
    "opt-lr-overflow": (
        attr("optimizer", "config", '{"type": "Adam", "lr": 1e999}'),
        "overflows",
    ),
    "opt-lr-negative": (
        json_attr("optimizer", "config", lambda c: c.update(lr=-0.1)),
        "learning rate must be a finite number above 0",
    ),
    "opt-lr-true": (  # 0 is a decay run out, saved as such; True is no rate
        json_attr("optimizer", "config", lambda c: c.update(lr=True)),
        "learning rate must be a real number, not True",
    ),
    "opt-beta1-one": (
        json_attr("optimizer", "config", lambda c: c.update(beta1=1.0)),
        r"beta1 must be a finite number in \[0, 1\)",
    ),
    "opt-eps-zero": (json_attr("optimizer", "config", lambda c: c.update(eps=0)), "eps must be"),
    "opt-unknown-argument": (
        json_attr("optimizer", "config", lambda c: c.update(evil=1)),
        "bad arguments for Adam",
    ),
    "opt-iterations-negative": (attr("optimizer", "iterations", -1), "iteration count -1"),
    "opt-iterations-huge": (attr("optimizer", "iterations", 2**62), "iteration count"),
    "opt-iterations-string": (attr("optimizer", "iterations", "6"), "should be a single int"),
    "opt-iterations-missing": (attr("optimizer", "iterations", DELETE), "@iterations is missing"),
    "opt-unknown-slot": (
        add("optimizer/evil/0.W", np.zeros((2, 8), "f4")),
        r"keeps the state 'm', 'v', but the file holds 'evil', 'm', 'v'",
    ),
    "opt-huge-unknown-slot": (add("optimizer/evil/0.W", **HUGE), "keeps the state 'm', 'v'"),
    "opt-missing-slot": (delete("optimizer/v"), "but the file holds 'm'"),
    "opt-slot-unknown-param": (
        add("optimizer/m/7.W", np.zeros((2, 8), "f4")),
        "names arrays the model does not have: '7.W'",
    ),
    "opt-slot-wrong-shape": (
        replace("optimizer/m/0.W", np.zeros((3, 8), "f4")),
        r"has shape \(3, 8\), but parameter 0.W needs \(2, 8\)",
    ),
    "opt-slot-huge": (replace("optimizer/v/0.W", **HUGE), r"has shape \(20000, 20000\)"),
    "opt-slot-nan": (replace("optimizer/v/2.b", np.array([np.nan, 0], "f4")), "1 NaN"),
    "opt-slot-v-negative": (  # its square root was NaN at the next step
        replace("optimizer/v/2.b", np.array([-1e-3, 0], "f4")),
        "optimizer/v/2.b holds 1 negative values; it keeps squares",
    ),
    "opt-slot-a-dataset": (replace("optimizer/m", np.zeros(2)), "/optimizer/m is not a group"),
    # schedules
    "schedule-unknown": (
        json_attr("optimizer", "config", lambda c: c.update(lr={"type": "Evil", "lr": 0.1})),
        "unknown schedule type 'Evil'",
    ),
    "schedule-step-size-zero": (
        json_attr(
            "optimizer",
            "config",
            lambda c: c.update(lr={"type": "StepDecay", "lr": 0.1, "step_size": 0}),
        ),
        "step_size must be at least 1",
    ),
    "schedule-decay-steps-zero": (
        json_attr(
            "optimizer",
            "config",
            lambda c: c.update(
                lr={"type": "ExponentialDecay", "lr": 0.1, "decay_rate": 0.5, "decay_steps": 0}
            ),
        ),
        "decay_steps must be at least 1",
    ),
    "schedule-lr-string": (
        json_attr(
            "optimizer",
            "config",
            lambda c: c.update(lr={"type": "InverseTimeDecay", "lr": "nan", "decay_rate": 1}),
        ),
        "learning rate must be a real number",
    ),
    # training
    "epoch-below-minus-one": (attr("training", "epoch", -2), "epoch -2"),
    "epoch-huge": (attr("training", "epoch", 2**60), "epoch 1152921504606846976 is not between"),
    "epoch-string": (attr("training", "epoch", "3"), "should be a single int"),
    "stopped-seven": (attr("training", "stopped", 7), "stopped is 7, not 0 or 1"),
    "generator-not-json": (attr("training", "generator", "{'a': 1}"), "generator state is not"),
    "generator-list": (attr("training", "generator", "[1, 2]"), "generator state cannot be"),
    "generator-other-kind": (
        json_attr("training", "generator", lambda s: s.update(bit_generator="MT19937")),
        "generator state cannot be restored",
    ),
    "generator-missing-state": (
        json_attr("training", "generator", lambda s: s.pop("state")),
        "generator state cannot be restored",
    ),
    "generator-philox-three-keys": (
        json_attr("training", "generator", lambda s: s["philox"].update(key=[1, 2, 3])),
        "needs a key of two numbers",
    ),
    "generator-philox-counter-huge": (
        json_attr("training", "generator", lambda s: s["philox"].update(counter=2**70)),
        "a counter in 0..2",
    ),
    "generator-philox-counter-float": (
        json_attr("training", "generator", lambda s: s["philox"].update(counter=1e300)),
        "a counter in 0..2",
    ),
    "generator-huge-int": (
        json_attr("training", "generator", lambda s: s["state"].update(state=2**300)),
        "generator state cannot be restored",
    ),
    # callbacks
    "callback-state-not-json": (
        attr("callbacks/EarlyStopping", "state", "{"),
        "callback EarlyStopping's state is not valid JSON",
    ),
    "callback-state-a-list": (attr("callbacks/EarlyStopping", "state", "[]"), "not a JSON object"),
    "callback-odd-name": (
        lambda f, s: f.move("callbacks/EarlyStopping", "callbacks/<script>"),
        "callbacks are saved, under their class names",
    ),
    "callback-too-many": (
        lambda f, s: [f.create_group(f"callbacks/C{i}") for i in range(70)],
        "holds 71 entries",
    ),
    "callback-unknown-array": (
        add("callbacks/EarlyStopping/5.W", np.zeros(2, "f4")),
        "does not have: '5.W'",
    ),
    "callback-array-wrong-shape": (
        replace("callbacks/EarlyStopping/0.b", np.zeros(9, "f4")),
        r"has shape \(9,\)",
    ),
    "callback-array-huge": (replace("callbacks/EarlyStopping/0.W", **HUGE), r"\(20000, 20000\)"),
    "callback-array-nan": (
        replace("callbacks/EarlyStopping/0.b", np.full(8, np.nan, "f4")),
        "8 NaN",
    ),
    "callback-a-dataset": (replace("callbacks/EarlyStopping", np.zeros(1)), "is not a group"),
    "callbacks-a-dataset": (replace("callbacks", np.zeros(1)), "/callbacks is not a group"),
}
CASES.update(
    {
        # a string that never closes: the nesting count once rescanned the rest from each quote
        "json-unclosed-escapes": (attr("/", "architecture", '\\"' * 200_000), "not valid JSON"),
        "name-not-utf8": (
            lambda f, s: f["weights"].create_dataset(b"\xff", data=[1.0]),
            "is not UTF-8",
        ),
        "weights-chunks-unwritten": (sparse_weights, "stores 1 of its 2 chunks"),
        "dataspace-dims-past-maxdims": (raw(dims_past_maxdims), "cannot read it, it is damaged"),
        # the link walk: nesting, and objects reached twice (read twice, or a cycle)
        "groups-17-deep": (
            lambda f, s: f.create_group("x" + "/a" * 16),
            "the group 'x/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a' lies 17 levels deep, more than the 16",
        ),
        "weight-hard-linked-into-a-callback": (hard_link_weight, "reached by 2 hard links"),
        "group-linked-to-the-root": (
            lambda f, s: f.__setitem__("x/loop", f["/"]),
            "'x/loop' is reached by 2 hard links",
        ),
    }
)
CASES.update(FILE_TRICKS)
CASES["soft-link-elsewhere"] = (soft_link_elsewhere, "'elsewhere' is a soft link")
READS_ANOTHER_FILE = [
    "external-storage",
    "external-link",
    "external-group-link",
    "virtual-dataset",
    "virtual-dataset-elsewhere",
]


def crafted(good, secrets, tmp_path, case_id, cases=None) -> os.PathLike:
    """A copy of the good checkpoint, mutated by ``cases[case_id]`` (CASES by default);
    named after the case. Other tables pass themselves rather than edit CASES."""
    path = tmp_path / f"crafted-{case_id}.h5"
    shutil.copy(good, path)
    mutate = (CASES if cases is None else cases)[case_id][0]
    if getattr(mutate, "raw", False):
        mutate(path)
    else:
        with h5py.File(path, "r+") as f:
            mutate(f, secrets)
    return path


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 75


@pytest.mark.parametrize("case_id", list(CASES))
def test_crafted_checkpoint_is_refused(case_id, good, secrets, tmp_path):
    path = crafted(good, secrets, tmp_path, case_id)
    with pytest.raises(nb.CheckpointError, match=CASES[case_id][1]) as err:
        nb.load(path, with_optimizer=True)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("case_id", READS_ANOTHER_FILE)
def test_a_trick_that_reads_another_file_reads_nothing(case_id, good, secrets, tmp_path):
    path = crafted(good, secrets, tmp_path, case_id)
    with h5py.File(path, "r") as f:  # plain h5py follows the trick to the other file's bytes
        reached = f["notes" if "notes" in f else "weights/0.W"][()]
    np.testing.assert_array_equal(reached, SECRET)
    assert SECRET.tobytes() not in path.read_bytes()
    with pytest.raises(nb.CheckpointError, match="another file|other files") as err:
        nb.load(path, with_optimizer=True)
    assert "4242" not in str(err.value) and "4.24" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written


def test_restore_refuses_a_crafted_file_too(good, secrets, tmp_path):
    path = crafted(good, secrets, tmp_path, "external-storage")
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], seed=0)
    before = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
    with pytest.raises(nb.CheckpointError, match="another file"):
        nb.restore(model, path)
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(value), before[name])


def test_max_params_can_be_raised_for_a_trusted_file(tmp_path):
    model = nb.Sequential([Dense(300, 400), ReLU(), Dense(400, 2)], seed=0)
    path = nb.save(model, tmp_path / "big.h5")
    with pytest.raises(nb.CheckpointError, match=r"declares 121202 weights.*max_params=121202"):
        nb.load(path, max_params=100_000)
    again = nb.load(path, max_params=121_202)
    np.testing.assert_array_equal(
        nb.to_numpy(again.params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


def test_a_conv_border_wider_than_its_kernel_is_refused_at_the_load(tmp_path):
    """Padding adds no weights, so no count saw it: a 2 KB file of padding 100000 loaded,
    and its first forward on one 8 x 8 image asked for 149 GiB."""
    path = nb.save(
        nb.Sequential([nb.layers.Conv2D(1, 1, 1)], input_shape=(1, 8, 8)), tmp_path / "c.h5"
    )
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["architecture"])
        config["layers"][0]["padding"] = [10**5, 10**5]
        write_text(f, "architecture", json.dumps(config))
    with pytest.raises(nb.CheckpointError, match=r"padding from 0 to kernel_size, got .*100000"):
        nb.load(path)


@pytest.mark.parametrize("backend", CPU_BACKEND_NAMES)
def test_a_model_past_the_default_cap_resumes_and_restores_its_own_checkpoint(
    tmp_path, monkeypatch, backend
):
    """fit(resume=True) has no max_params to give: a model of more than the default cap
    saved its checkpoints and could not resume from them, told of an nb.load argument."""
    monkeypatch.setattr(nb.checkpoint, "DEFAULT_MAX_PARAMS", 20)  # as 10**8: 22 weights
    X, y = nb.datasets.make_moons(16, seed=0)
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0, backend=backend)
    fit = dict(loss="cross_entropy", optimizer="adam", checkpoint=path, verbose=0)
    model.fit(X, y, epochs=1, **fit)
    history = model.fit(X, y, epochs=3, resume=True, **fit)
    assert len(history.history["loss"]) == 2  # epochs 1 and 2, after the saved epoch 0
    other = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=1, backend=backend)
    nb.restore(other, path)
    np.testing.assert_array_equal(
        nb.to_numpy(other.params["0.W"]), nb.to_numpy(model.params["0.W"])
    )
    with pytest.raises(nb.CheckpointError, match=r"declares 22 weights, more than max_params=20"):
        nb.load(path)  # a model of the file's own: the default cap, as before


@pytest.mark.parametrize("backend", CPU_BACKEND_NAMES)
def test_a_fit_resumes_its_checkpoint_of_more_copies_than_the_default_allows(
    tmp_path, monkeypatch, backend
):
    """Adam's two slots and two EarlyStoppings' best weights: five copies of a model past
    a quarter of the cap, which the fit saved and then refused to resume, told of
    nb.load(path, max_params=...), an argument fit does not have."""
    monkeypatch.setattr(nb.checkpoint, "DEFAULT_MAX_PARAMS", 1000)  # as 10**8: 1474 weights
    X = np.random.default_rng(0).normal(size=(64, 20))
    y = (X[:, 0] > 0).astype(np.int64)
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(20, 64), ReLU(), Dense(64, 2)], seed=0, backend=backend)

    def fit(epochs, resume):
        stops = [nb.callbacks.EarlyStopping(m, patience=50) for m in ("val_loss", "val_accuracy")]
        return model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=epochs,
                         checkpoint=path, resume=resume, validation_split=0.25,
                         metrics=["accuracy"], callbacks=stops, verbose=0)  # fmt: skip

    fit(2, False)
    assert len(fit(4, True).history["loss"]) == 2


def test_the_copies_bound_counts_the_running_state_too(tmp_path):
    """BatchNorm's running mean and variance are copied by EarlyStopping's best arrays as
    the weights are: 29 values a copy, five copies past 4 x max_params=29."""
    X, y = nb.datasets.make_moons(40, seed=0)
    path = tmp_path / "bn.h5"
    model = nb.Sequential([Dense(2, 3), nb.layers.BatchNorm(3), Dense(3, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0,
              callbacks=[nb.callbacks.EarlyStopping(monitor="loss")], checkpoint=path)  # fmt: skip
    with h5py.File(path, "r+") as f:
        for i in (1, 2, 3):
            f.copy(f["callbacks/EarlyStopping"], f"callbacks/EarlyStopping.{i}")
    with pytest.raises(nb.CheckpointError, match=r"hold 145 values, more than 4 x max_params=29"):
        nb.load(path, max_params=29)


def test_max_params_bounds_every_copy_of_the_weights(good, tmp_path):
    """42 weights: Adam's two slots and EarlyStopping's best weights make 4 copies, which
    max_params=42 allows; a second callback holding the weights again is a fifth. With
    64 such callbacks of compressed zeros, a small file made the reader allocate 65 models."""
    model, optimizer, _ = nb.load(good, with_optimizer=True, max_params=42)
    assert sum(int(np.prod(W.shape)) for W in model.params.values()) == 42
    path = tmp_path / "copies.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        f.copy(f["callbacks/EarlyStopping"], "callbacks/EarlyStopping.1")
    nb.load(path, with_optimizer=True)  # within the default max_params
    with pytest.raises(nb.CheckpointError) as err:
        nb.load(path, with_optimizer=True, max_params=42)
    assert str(err.value).startswith(f"{path}: its arrays")
    assert "hold 210 values, more than 4 x max_params=42" in str(err.value)
    assert "a genuine checkpoint with several callbacks holding weights" in str(err.value)
    assert "nb.load(path, max_params=53)" in str(err.value)
    nb.load(path, with_optimizer=True, max_params=53)


def test_the_cap_a_count_refusal_offers_lets_the_file_s_copies_through(tmp_path):
    """Two EarlyStoppings and Adam: five copies of 42 weights. max_params=42, offered for
    the count, was then refused for the copies, asking for 53."""
    X, y = nb.datasets.make_moons(50, seed=0)
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], seed=0)
    stops = [nb.callbacks.EarlyStopping("loss", patience=50),
             nb.callbacks.EarlyStopping("accuracy", patience=50)]  # fmt: skip
    path = tmp_path / "run.h5"
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, verbose=0,
              metrics=["accuracy"], callbacks=stops, checkpoint=path)  # fmt: skip
    with pytest.raises(nb.CheckpointError) as err:
        nb.load(path, max_params=10)
    assert "declares 42 weights" in str(err.value)
    assert "nb.load(path, max_params=53) or nb.restore(model, path, max_params=53)" in str(
        err.value
    )
    nb.load(path, max_params=53)


def test_a_refused_restore_is_told_the_restore_that_reads_the_file(good, tmp_path):
    """The caps' hint named only nb.load, which builds a model of its own: one restoring
    into theirs is shown nb.restore with the cap, and following it fills the model."""
    path = tmp_path / "copies.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        f.copy(f["callbacks/EarlyStopping"], "callbacks/EarlyStopping.1")
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], seed=1)
    with pytest.raises(nb.CheckpointError) as err:
        nb.restore(model, path, max_params=42)
    assert "or nb.restore(model, path, max_params=53)" in str(err.value)
    assert nb.restore(model, path, max_params=53) == nb.load(good, with_optimizer=True)[2]
    np.testing.assert_array_equal(
        nb.to_numpy(model.params["0.W"]), nb.to_numpy(nb.load(path).params["0.W"])
    )


@pytest.mark.parametrize(
    "failure, said",
    [
        (MemoryError("Unable to allocate 4.00 GiB"), "more data than fits in memory; it was"),
        (
            OSError("Can't synchronously read data (filter returned failure during read)"),
            "cannot read it, it is damaged, or it declares more data than fits in memory",
        ),
    ],
)
def test_a_read_that_may_have_run_out_of_memory_says_so(good, monkeypatch, failure, said):
    """HDF5 reports a damaged compressed chunk (the usual cause) and a decompression
    that ran out of memory alike, as a filter's failure: damage is named first."""

    def fail(backend, host):
        raise failure

    monkeypatch.setattr(nb.checkpoint, "_to_backend", fail)
    with pytest.raises(nb.CheckpointError, match=said) as err:
        nb.load(good)
    assert str(err.value).startswith(f"{good}: ")


def test_loading_draws_no_weights(good, monkeypatch):
    def no_draws(*args, **kwargs):
        raise AssertionError("a load drew random weights")

    monkeypatch.setattr(nb.Generator, "normal", no_draws)
    model = nb.load(good)
    assert model.params["0.W"].shape == (2, 8)


def test_os_errors_stay_os_errors(good, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        nb.load(tmp_path / "absent.h5")
    with pytest.raises(IsADirectoryError):
        nb.load(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.h5"
        shutil.copy(good, locked)
        locked.chmod(0)
        with pytest.raises(PermissionError):
            nb.load(locked)


def test_a_fixed_length_attribute_past_the_cap_is_refused_before_it_is_read(good, tmp_path):
    """Fixed-length text is read whole into memory: its stored size is checked first
    (variable-length text is read in a child and measured there)."""
    path = tmp_path / "big-attribute.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+", libver="latest") as f:  # dense storage: past 64 kB
        f.attrs["architecture"] = np.bytes_(b" " * (2 << 20))
    with pytest.raises(nb.CheckpointError, match=r"/@architecture is larger than 1048576 bytes"):
        nb.load(path)  # read, it would be "longer than 1048576 characters"


def test_a_variable_length_attribute_past_the_cap_is_refused_in_its_child(
    good, tmp_path, monkeypatch
):
    """The child measured the text after sending it whole: 50 M characters took 916 MB
    in the parent before the refusal."""
    path = tmp_path / "long-string.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+", libver="latest") as f:
        f.attrs["architecture"] = " " * (2 << 20)  # variable-length, as older files hold
    sent = []
    run = h5child._run

    def recording(*args, **kwargs):
        done = run(*args, **kwargs)
        sent.append(len(done.stdout))
        return done

    monkeypatch.setattr(h5child, "_run", recording)
    with pytest.raises(nb.CheckpointError, match=r"/@architecture is longer than 1048576"):
        nb.load(path)
    assert sent == [0, 0]  # the structure's walk, then the string's reader: neither sent it


def test_a_chain_of_20000_groups_is_refused_at_once_not_a_crash(good, tmp_path):
    """HDF5's recursive link walk overflowed the C stack on it (the interpreter died),
    and 10,000 levels took 53 s; the walk now stops at the 17th level."""
    path = tmp_path / "deep.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+", libver="latest") as f:
        group = f.create_group("x")
        for _ in range(20_000):
            group = group.create_group("a")
    script = "import sys, nnbackend as nb\ntry:\n    nb.load(sys.argv[1])\n"
    script += "except nb.CheckpointError as err:\n    print(err)\n"
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert f"{path}: the group 'x/a/a/" in done.stdout and "levels deep" in done.stdout


# Text from the file in a message: a lone surrogate (valid JSON) made printing the error
# raise UnicodeEncodeError, and newlines or terminal escapes could forge log lines.
FAKE = "\r\x1b[2K\x1b[32mOK: checkpoint verified\x1b[0m\n"
TEXT_IN_MESSAGES = {
    "layer-type-surrogate": (layer(1, type="\ud800"), r"unknown layer type '\\ud800'"),
    "layer-type-escapes": (layer(1, type="\x1b[2J\x1b[H"), r"unknown layer type '\\x1b\[2J"),
    "arch-a-list-on-two-lines": (  # JSON may hold raw CR and LF between its values
        lambda f, s: write_text(f, "architecture", '[\r\n"OK: checkpoint verified"]'),
        r"not a model's config \(a dict with a list of layers\): '\[\\r\\n",
    ),
    "argument-named-with-escapes": (layer(0, **{FAKE: 1}), "bad arguments for Dense"),
    "optimizer-surrogate": (
        json_attr("optimizer", "config", lambda c: c.update(type="\udfff\n")),
        "unknown optimizer type",
    ),
}


@pytest.mark.parametrize("case_id", list(TEXT_IN_MESSAGES))
def test_text_from_the_file_is_escaped_in_messages(case_id, good, secrets, tmp_path):
    path = crafted(good, secrets, tmp_path, case_id, TEXT_IN_MESSAGES)
    with pytest.raises(nb.CheckpointError, match=TEXT_IN_MESSAGES[case_id][1]) as err:
        nb.load(path, with_optimizer=True)
    message = str(err.value)
    message.encode("utf-8")  # printable and loggable
    assert message.isprintable(), ascii(message)
    assert "custom_objects" not in message  # no class can bear such a name


def test_a_files_name_is_escaped_in_messages(good, tmp_path):
    """The name, downloaded with the file, went into the message raw: its escapes
    could clear a terminal's line and forge one (FileNotFoundError wrote its repr)."""
    path = tmp_path / f"we{FAKE}ird.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        del f["weights/0.W"]
    with pytest.raises(nb.CheckpointError, match=r"we\\r\\x1b\[2K.*ird\.h5") as err:
        nb.load(path)
    assert str(err.value).isprintable(), ascii(str(err.value))


# --- allocation bounds ------------------------------------------------------------

LOAD_UNDER_A_1_GIB_CAP = textwrap.dedent(
    """
    import json, resource, sys
    import nnbackend as nb
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    try:
        bytearray(1 << 30)
        sys.exit("the address-space cap does not hold")
    except MemoryError:
        pass
    outcomes = []
    for path, max_params in json.loads(sys.argv[1]):
        try:
            nb.load(path, with_optimizer=True, max_params=max_params)
            outcomes.append("loaded")
        except BaseException as exc:
            outcomes.append(type(exc).__name__ + ": " + str(exc)[:300])
    print(json.dumps(outcomes))
    """
)


def run_capped(files: list) -> list[str]:
    """Load each (path, max_params) in a child process capped at 1 GiB of address space;
    the outcome of each ("loaded", or the error's type and message)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", LOAD_UNDER_A_1_GIB_CAP, json.dumps([[str(p), m] for p, m in files])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout)


def huge_architecture(f, secrets):
    """Dense(20000, 20000) over a 1.6 GB weight that was declared, never written."""
    config = json.loads(f.attrs["architecture"])
    config["layers"] = [
        {"type": "Dense", "n_in": 20000, "n_out": 20000, "bias": False, "init": {"name": "lecun"}}
    ]
    f.attrs["architecture"] = json.dumps(config)
    for name in list(f["weights"]):
        del f["weights"][name]
    f["weights"].create_dataset("0.W", **HUGE)
    del f["optimizer"], f["callbacks"]


HUGE_CASES = [
    "weight-huge-never-written",
    "opt-huge-unknown-slot",
    "opt-slot-huge",
    "callback-array-huge",
    "dense-20000x20000",
    "dense-n_out-huge",
    "arch-100000-deep",
    "huge-architecture",
]


def test_huge_declarations_end_in_checkpoint_error_under_a_1_gib_cap(good, secrets, tmp_path):
    CASES["huge-architecture"] = (huge_architecture, None)
    try:
        paths = [crafted(good, secrets, tmp_path, case_id) for case_id in HUGE_CASES]
    finally:
        del CASES["huge-architecture"]
    # the last twice: under the default cap, then with the cap raised past its 4e8
    # weights, when the dataset itself must be found wanting
    outcomes = run_capped([(p, 10**8) for p in paths] + [(paths[-1], 10**9)])
    for path, outcome in zip([*paths, paths[-1]], outcomes, strict=True):
        assert outcome.startswith(f"CheckpointError: {path}"), outcome
    assert "max_params=100000000" in outcomes[-2]
    assert "declares 1600000000 bytes but the file stores 0" in outcomes[-1]


@pytest.mark.parametrize(
    "where",
    ["state/1.running_var", "callbacks/EarlyStopping/1.running_var", "optimizer/h/0.W"],
)
def test_squares_saved_negative_are_refused(tmp_path, where):
    """A negative running variance loaded silently and made every prediction NaN; a
    negative sum of squares (AdaGrad's h, RMSProp's, Adam's v) made the next step's."""
    path = tmp_path / "run.h5"
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4), ReLU(), Dense(4, 2)], seed=0)
    fit = dict(loss=nb.losses.SoftmaxCrossEntropy(), epochs=2, batch_size=20, verbose=0)
    model.fit(X, y, optimizer=nb.optim.AdaGrad(0.1), validation_split=0.25, checkpoint=path,
              callbacks=[nb.callbacks.EarlyStopping(patience=5)], **fit)  # fmt: skip
    nb.load(path)  # as saved: m, velocities and means may be negative; these are not
    with h5py.File(path, "r+") as f:
        flipped = -np.abs(f[where][()]) - 1e-3
        del f[where]
        f[where] = flipped
    with pytest.raises(nb.CheckpointError, match=rf"{where} holds \d+ negative values"):
        nb.load(path)


def test_a_weight_in_one_value_chunks_is_refused_before_it_is_read(tmp_path):
    """HDF5 takes ~4 KB to read each chunk: a 2 MB checkpoint of a Dense(700, 700) in
    1-value chunks took 1.9 GB to load."""
    path = tmp_path / "tiny-chunks.h5"
    nb.save(nb.Sequential([Dense(40, 40)], seed=0), path)
    with h5py.File(path, "r+", libver="latest") as f:
        W = f["weights/0.W"][()]
        del f["weights/0.W"]
        f["weights"].create_dataset("0.W", data=W, chunks=(1, 1))
    with pytest.raises(nb.CheckpointError, match=r"0.W is stored in 1600 chunks of 4 bytes"):
        nb.load(path)
    with h5py.File(path, "r+", libver="latest") as f:  # chunks of 10 values: 160 of them
        del f["weights/0.W"]
        f["weights"].create_dataset("0.W", data=W, chunks=(10, 1))
    np.testing.assert_array_equal(nb.load(path).params["0.W"], W)


def test_arrays_compressed_far_past_weights_need_a_cap_given(tmp_path, monkeypatch):
    """Deflate's 1100:1 let a 3 MB file declare 3.9 GB within max_params; nb.save writes
    arrays uncompressed, so the arrays may declare 64 times the file's size (past the
    FREE_BYTES any file may declare, made 0 here to test it on a small file). The count
    comes before any weight is read: it came after, once each was inflated (1.6 GB for
    a 0.8 MB file of one 9999 x 9999 Dense)."""
    monkeypatch.setattr(nb.checkpoint_sizes, "FREE_BYTES", 0)
    model = nb.Sequential([Dense(1000, 1000), ReLU(), Dense(1000, 2)], seed=0)
    plain, packed = tmp_path / "plain.h5", tmp_path / "packed.h5"
    nb.save(model, plain)
    with h5py.File(plain, "r") as source, h5py.File(packed, "w") as f:
        f.attrs.update(source.attrs)
        for name in source:
            if name != "weights":
                source.copy(name, f)
        for name in source["weights"]:
            if name != "0.W":
                source.copy(f"weights/{name}", f.require_group("weights"))
        zeros = np.zeros((1000, 1000), "f4")  # a million of them, deflated to a few kB
        f["weights"].create_dataset("0.W", data=zeros, compression=9)
    assert packed.stat().st_size * 64 < 4 * 1002 * 1000 + 8 * 1000 < plain.stat().st_size * 64
    loaded = nb.load(plain)  # what nb.save writes passes
    np.testing.assert_array_equal(loaded.params["0.W"], model.params["0.W"])
    told = r"packed.h5: its arrays declare 1003002 values, up to 8024016 bytes as read, \d+ "
    told += r"times the file's \d+; nb.save does"
    read = []
    monkeypatch.setattr(nb.checkpoint, "dataset", lambda *args, **kw: read.append(args[2]))
    with pytest.raises(nb.CheckpointError, match=told + r" not compress.*max_params=10+\)"):
        nb.load(packed)
    assert read == []
    monkeypatch.undo()
    assert not nb.load(packed, max_params=10**8).params["0.W"].any()  # a cap given: trusted


def test_float64_arrays_in_a_float32_file_count_at_their_width(tmp_path, monkeypatch):
    """A file's dtype said float32 while its arrays were float64, cast once read: the
    count took 4 bytes a value, and a file passed at 98 times its size, not 64."""
    monkeypatch.setattr(nb.checkpoint_sizes, "FREE_BYTES", 0)
    plain = nb.save(nb.Sequential([Dense(300, 800)], seed=0), tmp_path / "plain.h5")
    sparse, path = np.zeros((300, 800)), tmp_path / "wide.h5"
    sparse[::20, ::10] = np.random.default_rng(0).random((15, 80))  # 1200 stored in full
    with h5py.File(plain, "r") as source, h5py.File(path, "w") as f:
        f.attrs.update(source.attrs)
        assert f.attrs["dtype"] in ("float32", b"float32")
        for name in source:
            if name != "weights":
                source.copy(name, f)
        f.create_group("weights").create_dataset(
            "0.W", data=sparse, chunks=(16, 800), compression=9
        )
        source.copy("weights/0.b", f["weights"])
    size = path.stat().st_size
    assert 240_800 * 4 < 64 * size < 240_800 * 8  # within the cap at 4 bytes a value
    with pytest.raises(nb.CheckpointError, match=r"declare 240800 values, up to 1926400 bytes"):
        nb.load(path)
    trusted = nb.load(path, max_params=10**6).params["0.W"]  # cast to the file's float32
    np.testing.assert_array_equal(trusted, sparse.astype(np.float32))


# --- strings: fixed-length now, variable-length (a heap HDF5 can loop on) read apart ---


def string_attributes(path) -> dict:
    """(object, attribute) -> whether its string is variable-length, for every string."""
    found = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            for key in obj.attrs:
                kind = h5py.h5a.open(obj.id, key.encode()).get_type()
                if kind.get_class() == h5py.h5t.STRING:
                    found[name, key] = kind.is_variable_str()

        visit("/", f)
        f.visititems(visit)
    return found


def as_older_file(good, path):
    """The good checkpoint with every text a variable-length string, as files written
    before nb.save wrote fixed-length ones hold them."""
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        for name, key in string_attributes(good):
            f[name].attrs[key] = f[name].attrs[key].decode()
    assert all(string_attributes(path).values())
    return path


@pytest.mark.parametrize("where", ["weights/0.W", "state/1.running_var", "optimizer/v/0.W"])
def test_a_flipped_bit_in_an_array_is_damage_not_other_weights(tmp_path, where):
    """The arrays were written without a checksum: of 2,500 single-bit flips of a
    checkpoint, 137 loaded as other weights, optimizer state or running state."""
    model = nb.Sequential([Dense(4, 3), nb.layers.BatchNorm(3)], seed=0)
    adam = nb.optim.Adam(0.01)
    model.fit(np.ones((8, 4)), np.arange(8) % 3, loss="cross_entropy", optimizer=adam, verbose=0)
    path = tmp_path / "m.h5"
    nb.save(model, path, optimizer=adam)
    with h5py.File(path, "r") as f:
        assert f[where].fletcher32
        offset = f[where].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 1] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(nb.CheckpointError, match="it is damaged"):
        nb.load(path, with_optimizer=True)


def test_save_writes_no_variable_length_string(good):
    strings = string_attributes(good)
    assert ("/", "architecture") in strings and ("training", "generator") in strings
    assert not any(strings.values())


def test_an_older_file_with_variable_length_strings_loads_the_same(good, tmp_path):
    older = as_older_file(good, tmp_path / "older.h5")
    model, optimizer, epoch = nb.load(older, with_optimizer=True)
    same, same_optimizer, same_epoch = nb.load(good, with_optimizer=True)
    assert epoch == same_epoch and optimizer.config() == same_optimizer.config()
    for name, W in same.params.items():
        np.testing.assert_array_equal(nb.to_numpy(model.params[name]), nb.to_numpy(W))


def test_an_older_file_loads_where_h5py_is_found_through_pythonpath(good, tmp_path):
    """Its strings are read in a child started with -I, which drops PYTHONPATH: where
    h5py came from there (module systems, HPC), every older file was called damaged."""
    base = getattr(sys, "_base_executable", sys.executable)
    bare = subprocess.run([base, "-I", "-c", "import h5py"], capture_output=True)
    if bare.returncode == 0:
        pytest.skip("the base Python finds h5py itself: nothing to show")
    older = as_older_file(good, tmp_path / "older.h5")
    found = os.pathsep.join(entry for entry in sys.path if entry)
    script = f"import nnbackend as nb; print(nb.load({str(older)!r}).count_params())"
    done = subprocess.run([base, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": found})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == nb.load(good).count_params()


def test_an_older_file_loads_beside_a_path_object_in_sys_path(good, tmp_path, monkeypatch):
    """Import passes over entries of sys.path that are not strings; the list handed to
    the child went through JSON, which refused one, and the file was called damaged."""
    monkeypatch.setattr(sys, "path", [*sys.path, tmp_path])
    older = as_older_file(good, tmp_path / "older.h5")
    assert nb.load(older).count_params() == nb.load(good).count_params()


def damage_the_string_heap(data: bytes) -> bytes:
    """Set the size of the global heap's free-space object to 0: HDF5 then loops
    forever reading any variable-length string of the file (and ignores Ctrl-C)."""
    data = bytearray(data)
    position = data.index(b"GCOL") + 16  # past the collection's signature, version, size
    while int.from_bytes(data[position : position + 2], "little") != 0:  # object 0: free
        size = int.from_bytes(data[position + 8 : position + 16], "little")
        position += 16 + (size + 7) // 8 * 8
    data[position + 8 : position + 16] = bytes(8)
    return bytes(data)


def test_a_damaged_string_heap_ends_in_checkpoint_error_not_a_hang(good, tmp_path):
    older = as_older_file(good, tmp_path / "damaged.h5")
    older.write_bytes(damage_the_string_heap(older.read_bytes()))
    script = textwrap.dedent(f"""
        import nnbackend as nb
        from nnbackend import h5text
        h5text.HEAP_SECONDS = 5
        try:
            nb.load({str(older)!r})
        except nb.CheckpointError as err:
            print("refused:", err)
    """)
    done = subprocess.run(  # the outer limit only guards the test run itself
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "did not end in 5 s: the file's string heap is damaged" in done.stdout


def test_running_state_kept_in_floats_must_be_saved_as_floats(tmp_path):
    """Integers where a layer keeps floats would turn a float32 model's outputs float64."""
    model = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4)], seed=0)
    path = nb.save(model, tmp_path / "bn.h5")
    with h5py.File(path, "r+") as f:
        del f["state/1.running_var"]
        f["state/1.running_var"] = np.ones(4, "i8")
    with pytest.raises(nb.CheckpointError, match="holds int64 values, but floats are expected"):
        nb.load(path)


def test_optimizer_slots_naming_running_state_are_refused(tmp_path):
    """Adam's m named a BatchNorm's running mean: loaded, saved again at every
    checkpoint, and a distributed resume's other ranks met a bare KeyError."""
    X = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    model = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4), Dense(4, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.01), epochs=1, verbose=0)
    path = tmp_path / "c.h5"
    nb.save(model, path, optimizer=model.optimizer)
    with h5py.File(path, "r+") as f:
        f["optimizer/m"].create_dataset("1.running_mean", data=np.zeros(4, "float32"))
    with pytest.raises(nb.CheckpointError, match=r"optimizer/m names arrays .*1\.running_mean"):
        nb.load(path, with_optimizer=True)


def test_inverse_time_decay_past_any_step_count_is_refused():
    """decay_steps=10**400 was taken, then overflowed at the first step (a float over
    an int), in a file or by hand."""
    with pytest.raises(ValueError, match=r"decay_steps must be between 1 and 9007199254740992"):
        nb.optim.InverseTimeDecay(0.1, 0.5, decay_steps=10**400)
    assert nb.optim.InverseTimeDecay(0.1, 0.5, decay_steps=2**53)(3) == pytest.approx(0.1)
