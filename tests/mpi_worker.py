"""What each rank runs when tests/test_distributed.py launches ``mpiexec -n 2``:

    python -m tests.mpi_worker train OUT    every case of distributed_cases, the resumed
                                            fits, the summed losses, the manual loop and
                                            ranks that disagree; each rank writes
                                            OUT/rank<r>.npz and .json
    python -m tests.mpi_worker gpu OUT      the cases on CuPy, one GPU per rank (NCCL)
    python -m tests.mpi_worker fault OUT    rank 1 raises in the middle of epoch 3
    python -m tests.mpi_worker hang OUT     rank 1 stops answering in the middle of epoch 3
    python -m tests.mpi_worker exit OUT     rank 1 calls sys.exit(0) in the middle of epoch 3
    python -m tests.mpi_worker caught OUT   rank 1 raises there, catches it and exits

One launch runs many checks: each launch costs seconds.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import nnbackend as nb
from tests import distributed_cases as cases

FAIL_AT_STEP = 25  # the middle of epoch 2 (counting from 0): 10 steps an epoch


def train(out: Path, on_gpu: bool = False) -> None:
    rank = nb.distributed.rank()
    arrays, report = {}, {"rank": rank, "size": nb.distributed.world_size()}
    for case in cases.GPU_CASES if on_gpu else cases.CASES:
        net, history = cases.train(case, distributed=True)
        arrays.update({f"{case.name}/{k}": v for k, v in cases.weights(net).items()})
        report[case.name] = history.history
    if not on_gpu:
        resumed = resume(out)
        arrays.update({f"resumed/{k}": v for k, v in resumed.items()})
        arrays.update({f"manual/{k}": v for k, v in cases.manual_loop(distributed=True).items()})
        arrays.update({f"documented/{k}": v for k, v in cases.documented_loop().items()})
        report["disagreement"] = disagree()
        report["other settings"] = disagree_on_settings()
        report["fused on one rank"] = fused_on_one_rank()
        report["bad validation row"] = bad_validation_row()
        report["warnings of a NaN fit"] = warnings_of_a_nan_fit(out)
        stopped, report["early stopping"] = resume_early_stopping(out)
        arrays.update({f"early stopping/{k}": v for k, v in stopped.items()})
        for case in cases.SUMMED_CASES:
            net, history = cases.train_summed(case, distributed=True)
            arrays.update({f"summed {case.name}/{k}": v for k, v in cases.weights(net).items()})
            report[f"summed {case.name}"] = history.history
        report["read after fit"] = read_after_fit(out)
        report["bad checkpoint"] = resume_from_garbage(out)
        report["missing folder"] = checkpoint_in_missing_folder(out)
        rated, report["saved rate"] = resume_at_the_saved_rate(out)
        arrays.update({f"saved rate/{k}": v for k, v in rated.items()})
        report["checkpoints that fail, caught"] = checkpoints_that_fail_caught(out)
        for layers in cases.WHOLE_BATCH_LAYERS:
            trained, report[layers] = cases.train_whole_batch(layers, distributed=True)
            arrays.update({f"{layers}/{k}": v for k, v in trained.items()})
        report["stopped on rank 1"] = stop_on_rank_1(out)
        report["optimizers"] = optimizers()
        report["early stopping on rank 0"] = early_stopping_on_rank_0_only()
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps(report))


def resume(out: Path) -> dict:
    """Train 3 epochs with a checkpoint, then resume to 5 in a fresh model of other
    weights (rank 1's own checkpoint path, in a folder that does not exist, is never
    looked at: rank 0 writes, reads, and tells)."""
    case = cases.Case("numpy", "float64", "adam", 0.01)
    path = out / ("ckpt.h5" if nb.distributed.is_main() else "no-such-folder/ckpt.h5")
    cases.train(case, distributed=True, epochs=3, checkpoint=path)
    assert nb.distributed.is_main() == path.exists()
    net, _ = cases.train(case, distributed=True, checkpoint=path, resume=True, model_seed=99)
    return cases.weights(net)


def disagree() -> str:
    """Rank 1 passes fewer samples and another batch size: both ranks raise alike."""
    case = cases.CASES[0]
    (X, y), _ = cases.data()
    n, batch = (100, 11) if nb.distributed.rank() == 0 else (90, 12)
    try:
        cases.model(case).fit(X[:n], y[:n], loss="cross_entropy", optimizer="sgd",
                              batch_size=batch, verbose=0, distributed=True)  # fmt: skip
    except nb.distributed.DistributedError as exc:
        return str(exc)
    return "no error"


def disagree_on_settings() -> str:
    """Rank 1 asks for an L2 penalty, 3 epochs and a summed loss, rank 0 for none, 2
    and a mean: both ranks raise alike, naming each (not compared, the ranks would
    train apart, and rank 0 would wait for rank 1's third epoch)."""
    (X, y), _ = cases.data()
    other = nb.distributed.rank() == 1
    loss = nb.losses.SoftmaxCrossEntropy(reduction="sum" if other else "mean")
    try:
        cases.model(cases.CASES[0]).fit(X, y, loss=loss, optimizer="sgd", batch_size=11,
                                        epochs=3 if other else 2, l2=0.01 if other else None,
                                        verbose=0, distributed=True)  # fmt: skip
    except nb.distributed.DistributedError as exc:
        return str(exc)
    return "no error"


def fused_on_one_rank() -> str:
    """Rank 1 turns the fused kernels off (NNBACKEND_FUSED=0): no flat buffer there, so
    its gradients travel packed, of another length than rank 0's buffer."""
    (X, y), _ = cases.data()
    with nb.backend.fused(nb.distributed.rank() == 0):
        try:
            cases.model(cases.CASES[0]).fit(X, y, loss="cross_entropy", optimizer="sgd",
                                            verbose=0, distributed=True)  # fmt: skip
        except nb.distributed.DistributedError as exc:
            return str(exc)
    return "no error"


def bad_validation_row() -> str:
    """Row 25 of the validation targets (rank 1's share) is NaN on every rank."""
    (X, y), (X_val, y_val) = cases.data()
    y_val = y_val.astype(float)
    y_val[25] = np.nan
    try:
        cases.model(cases.CASES[0]).fit(X, y, loss="cross_entropy", optimizer="sgd",
                                        validation_data=(X_val, y_val), verbose=0,
                                        distributed=True)  # fmt: skip
    except ValueError as exc:
        return str(exc)
    return "no error"


def warnings_of_a_nan_fit(out: Path) -> dict:
    """A fit whose loss turns NaN at once, with a checkpoint: the warnings this rank
    gave (rank 0 alone speaks for the job), and the reason its history gives."""
    (X, y), _ = cases.data()
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        history = cases.model(cases.CASES[0]).fit(
            X, np.eye(3)[y], loss="mse", optimizer=nb.optim.SGD(1e300), verbose=0,
            checkpoint=out / "nan.h5", distributed=True,
        )  # fmt: skip
    said = [str(w.message).split(";")[0] for w in caught if w.category is RuntimeWarning]
    return {"warnings": said, "stop reason": history.stop_reason.split(";")[0]}


def resume_early_stopping(out: Path) -> tuple[dict, dict]:
    """4 epochs with a checkpoint and EarlyStopping (best epoch 3), then resumed to 8 in
    a model of other weights: rank 0 reads EarlyStopping's state and tells rank 1 (its
    path never existed). The weights fit returned, and what the resumed fit did."""
    case = cases.STOPPING_CASE
    path = out / ("stopping.h5" if nb.distributed.is_main() else "no-such-folder/stopping.h5")
    cases.train(case, distributed=True, epochs=4, checkpoint=path,
                callbacks=[cases.early_stopping()])  # fmt: skip
    net, history = cases.train(case, distributed=True, epochs=8, checkpoint=path, resume=True,
                               model_seed=99, callbacks=[cases.early_stopping()])  # fmt: skip
    return cases.weights(net), {"epochs": len(history["loss"]), "stop reason": history.stop_reason}


class SlowCheckpoint(nb.callbacks.ModelCheckpoint):
    """A checkpoint whose last save, on rank 0, starts 0.5 s late (a slow disk)."""

    def on_epoch_end(self, epoch, logs, model):
        if epoch == self.last_epoch and nb.distributed.is_main():
            time.sleep(0.5)
        super().on_epoch_end(epoch, logs, model)


def read_after_fit(out: Path) -> dict:
    """Rank 0 saves to a path every rank can read (one disk), its last save slow; each
    rank reads the file as soon as fit returns: which epoch it holds, and whether its
    weights are those fit returned."""
    path = out / "read-after-fit.h5"
    net, _ = cases.train(cases.CASES[0], distributed=True, epochs=2,
                         callbacks=[SlowCheckpoint(path)])  # fmt: skip
    saved, _, epoch = nb.load(path, with_optimizer=True)
    same = all(
        np.array_equal(nb.to_numpy(saved.params[k]), w) for k, w in cases.weights(net).items()
    )
    return {"saved epoch": epoch, "saved what fit returned": same}


def resume_from_garbage(out: Path) -> str:
    """Rank 0 finds no checkpoint but a text file: every rank raises its error."""
    (out / "garbage.h5").write_text("not HDF5")
    try:
        cases.train(cases.CASES[0], distributed=True, checkpoint=out / "garbage.h5", resume=True)
    except nb.CheckpointError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def checkpoint_in_missing_folder(out: Path) -> str:
    """Rank 0's checkpoint folder does not exist (rank 1's does): every rank raises."""
    folder = out if nb.distributed.rank() == 1 else out / "no-such-folder"
    try:
        cases.train(cases.CASES[0], distributed=True, checkpoint=folder / "ckpt.h5")
    except FileNotFoundError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def resume_at_the_saved_rate(out: Path) -> tuple[dict, str]:
    """2 epochs of SGD at 0.5 with a checkpoint, resumed to 5 by an SGD at 0.05: every
    rank takes the saved rate (rank 0 reads it from the file; rank 1's path never
    existed). The weights, and the error the ranks' differing rates gave."""
    case = cases.Case("numpy", "float64", "sgd", None)
    path = out / ("rate.h5" if nb.distributed.is_main() else "no-such-folder/rate.h5")
    cases.train(case, distributed=True, epochs=2, checkpoint=path)
    try:
        net, _ = cases.train(case, distributed=True, checkpoint=path, resume=True,
                             optimizer=nb.optim.SGD(0.05))  # fmt: skip
    except nb.distributed.DistributedError as exc:
        return {}, str(exc)
    return cases.weights(net), "none"


def checkpoints_that_fail_caught(out: Path) -> list[str]:
    """Rank 0's ModelCheckpoint cannot write, at the start (its folder is missing) and
    at epoch 0's save (a callback took the folder away): each rank catches what it
    raises, and the script fits again. What each rank caught, then how the fit went."""
    main, caught = nb.distributed.is_main(), []
    missing = out / ("no-such-folder" if main else "") / "mc.h5"
    vanishing = out / "vanishing"
    vanishing.mkdir(exist_ok=True)
    take_away = nb.callbacks.LambdaCallback(
        lambda epoch, logs, model: main and epoch == 0 and vanishing.rmdir()
    )
    saving = nb.callbacks.ModelCheckpoint(vanishing / "mc.h5", every=1)
    for callbacks in ([nb.callbacks.ModelCheckpoint(missing)], [take_away, saving]):
        try:
            cases.train(cases.CASES[0], distributed=True, epochs=2, callbacks=callbacks)
        except OSError as exc:
            caught.append(f"{type(exc).__name__}: {exc}")
    _, history = cases.train(cases.CASES[0], distributed=True, epochs=1)
    return [*caught, f"then {len(history)} epoch"]


def stop_on_rank_1(out: Path) -> dict:
    """A callback on rank 1 alone stops training after epoch 2 (of 5), as one watching
    its own clock would: what rank 0's checkpoint then holds."""
    stop = nb.callbacks.LambdaCallback(
        lambda epoch, logs, model: setattr(model, "stop_training", epoch == 2)
    )
    path = out / "stopped.h5"
    net, history = cases.train(cases.CASES[0], distributed=True, checkpoint=path, log_every=5,
                               callbacks=[stop] if nb.distributed.rank() == 1 else [])  # fmt: skip
    if not nb.distributed.is_main():
        return {}
    saved, _, epoch = nb.load(path, with_optimizer=True)
    same = all(
        np.array_equal(nb.to_numpy(saved.params[k]), w) for k, w in cases.weights(net).items()
    )
    return {"epochs": len(history["loss"]), "saved epoch": epoch, "saved what fit returned": same}


def early_stopping_on_rank_0_only() -> str:
    """EarlyStopping, which puts epoch 3's weights back, on rank 0 alone: the ranks end
    with different weights, which the end of fit finds."""
    callbacks = [cases.early_stopping()] if nb.distributed.is_main() else []
    try:
        cases.train(cases.STOPPING_CASE, distributed=True, epochs=8, callbacks=callbacks)
    except nb.distributed.DistributedError as exc:
        return str(exc)
    return "no error"


def halved_rate(step: int) -> float:
    return 0.1 / (1 + step)


def optimizers() -> dict:
    """A plain function as the learning rate trains (it has no config to compare); an
    optimizer that trained one model is refused for another on every rank alike."""
    case = cases.CASES[0]
    (X, y), _ = cases.data()
    fit = dict(loss="cross_entropy", batch_size=11, epochs=2, verbose=0, distributed=True)
    history = cases.model(case).fit(X, y, optimizer=nb.optim.SGD(halved_rate), **fit)
    adam = nb.optim.Adam(0.01)
    cases.model(case).fit(X, y, optimizer=adam, **fit)
    try:
        cases.model(case, seed=2).fit(X, y, optimizer=adam, **fit)
    except ValueError as exc:
        return {"function's losses": history["loss"], "another model": str(exc)}
    return {"function's losses": history["loss"], "another model": "no error"}


def fail_midway(out: Path, how) -> None:
    """Train with a checkpoint every epoch; at FAIL_AT_STEP, rank 1 does ``how()``."""
    case = cases.Case("numpy", "float64", "sgd", None)
    net = cases.model(case)
    forward, steps = net.forward, [0]

    def counting_forward(x, training=True):
        steps[0] += training
        if steps[0] == FAIL_AT_STEP and nb.distributed.rank() == 1:
            how()
        return forward(x, training)

    net.forward = counting_forward
    (X, y), _ = cases.data()
    net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=cases.EPOCHS,
            batch_size=cases.BATCH, log_every=1, checkpoint=out / "ckpt.h5", verbose=0,
            distributed=True)  # fmt: skip
    print(f"rank {nb.distributed.rank()} finished", flush=True)


def boom():
    raise RuntimeError("a failure on rank 1 only")


def main(argv) -> None:
    scenario, out = argv[0], Path(argv[1])
    nb.distributed.init(timeout=3 if scenario == "hang" else 60)
    if scenario in ("train", "gpu"):
        train(out, on_gpu=scenario == "gpu")
    elif scenario == "fault":
        fail_midway(out, boom)
    elif scenario == "hang":
        fail_midway(out, lambda: time.sleep(600))
    elif scenario == "exit":
        fail_midway(out, lambda: sys.exit(0))
    elif scenario == "caught":  # the script's own handler, on rank 1 alone
        try:
            fail_midway(out, boom)
        except RuntimeError as exc:
            print(f"rank {nb.distributed.rank()} caught {exc}", flush=True)
            sys.exit(1)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
