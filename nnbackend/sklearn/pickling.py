"""A fitted net as pickle carries it: host NumPy arrays and the backend's *name*.

A model trained on a GPU pickles into plain data (its architecture, its weights and its
optimizer state copied to the host), so the pickle loads where CuPy or torch is not
installed. On loading, the net goes back to the backend it was trained on when that
backend can run here; otherwise to the current one (``nb.use_backend``/``set_backend``/
``$NNBACKEND``, else NumPy), with a warning that says so, and a ``backend`` parameter
naming the other becomes None: a warm start or ``partial_fit`` trains where it loaded.

The pickle is for your own processes and files: loading any pickle runs whatever code
its maker chose, so never load one from a source you do not trust (share an
``nb.save`` checkpoint instead).
"""

from __future__ import annotations

import warnings

from nnbackend import optim
from nnbackend.backend import BackendUnavailableError, get_backend, to_numpy
from nnbackend.model import Sequential


def snapshot(model: Sequential) -> dict:
    """``model`` as plain data: config, weights and optimizer state as host arrays."""
    optimizer = model.optimizer
    return {
        "config": model.config(),
        "backend": model.backend.name,
        "dtype": model.backend.dtype_name,
        "params": {name: to_numpy(a) for name, a in model.params.items()},
        "optimizer": None
        if optimizer is None
        else {
            "config": optimizer.config(),
            "iterations": optimizer.iterations,
            "slots": {
                slot: {name: to_numpy(a) for name, a in arrays.items()}
                for slot, arrays in optimizer.state.items()
            },
        },
    }


def restored(state: dict) -> dict:
    """An estimator's pickled state with its net rebuilt (``rebuild``); a ``backend``
    parameter that named the backend which cannot run here is None now (else the next
    warm start or ``partial_fit`` would ask for it again, and fail)."""
    saved = state["model_"]
    state = dict(state, model_=rebuild(saved))
    if state["model_"].backend.name != saved["backend"] and state.get("backend") != "auto":
        state["backend"] = None
    return state


def rebuild(saved: dict) -> Sequential:
    """The model ``snapshot`` described, on its own backend if it runs here."""
    backend = _backend_for(saved["backend"], saved["dtype"])
    model = Sequential.from_config(saved["config"], backend=backend, seed=0)
    model.set_params({name: backend.asarray(a) for name, a in saved["params"].items()})
    if saved["optimizer"] is not None:
        model.optimizer = optim.from_config(saved["optimizer"]["config"])
        model.optimizer.load_state_dict(
            {
                "iterations": saved["optimizer"]["iterations"],
                "slots": {
                    slot: {name: backend.asarray(a) for name, a in arrays.items()}
                    for slot, arrays in saved["optimizer"]["slots"].items()
                },
            }
        )
    return model


def _backend_for(name: str, dtype: str):
    try:
        return get_backend(name, dtype=dtype)
    except (BackendUnavailableError, ValueError) as exc:
        fallback = get_backend(None, dtype=dtype)
        warnings.warn(
            f"this estimator was trained on backend {name!r}, which cannot run here ({exc}); "
            f"it was loaded onto {fallback.name!r}, where a warm start or partial_fit "
            "trains it too. Use nb.use_backend(...) around the loading to choose another, "
            "or est.model_.to(...) to move it.",
            UserWarning,
            stacklevel=5,
        )
        return fallback
