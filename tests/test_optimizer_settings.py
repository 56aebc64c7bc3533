"""Each optimizer's settings survive its config, are checked when made, and a state or
a model handed over is taken as documented; a Conv2D's fans count both kernel sides.
(The mutants of optim.py, optim_base.py, schedules.py and conv.py these kill survived
every other file without torch.)"""

from __future__ import annotations

import pytest

import nnbackend as nb
from nnbackend.layers import Conv2D, Dense
from nnbackend.optim import AdaGrad, Adam, RMSProp, from_config
from nnbackend.schedules import StepDecay


@pytest.mark.parametrize(
    "optimizer",
    [
        Adam(0.01, beta1=0.8, beta2=0.95, eps=1e-4),
        RMSProp(0.01, rho=0.8, eps=1e-5),
        AdaGrad(0.1, eps=1e-5),
    ],
    ids=repr,
)
def test_a_config_keeps_every_setting(optimizer):
    """A save and load of Adam(eps=1e-4) would resume with 1e-8 were eps left out."""
    again = from_config(optimizer.config())
    assert repr(again) == repr(optimizer)
    assert again.eps == optimizer.eps


def test_a_schedule_config_with_a_misspelt_setting_is_refused():
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'gama'"):
        StepDecay.from_config({"type": "StepDecay", "lr": 0.1, "step_size": 2, "gama": 0.5})


def test_adagrad_s_eps_of_0_is_refused():
    """A zero gradient divided by sqrt(0) + 0: NaN weights."""
    with pytest.raises(ValueError, match=r"eps must be a finite number above 0, got 0.0"):
        AdaGrad(eps=0)


def test_a_state_lacking_a_slot_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Adam state lacks the slots \['v'\]"):
        Adam().load_state_dict({"type": "Adam", "iterations": 1, "slots": {"m": {}}})


def test_an_optimizer_that_never_stepped_may_go_to_another_model():
    first, second = (nb.Sequential([Dense(2, 2)], seed=0) for _ in range(2))
    optimizer = Adam()
    optimizer.train_for(first)
    optimizer.train_for(second)  # no step taken for the first: nothing of it kept
    optimizer.step(second.params, {name: None for name in second.params})


def test_a_conv_kernel_s_fans_count_both_its_sides():
    """A (1, 5) kernel's fans counted as a 1 x 1's: its initial scale 2.2 times too large."""
    seen = []

    class Spy(nb.init.Initializer):
        def std(self, fan_in, fan_out):
            seen.append((fan_in, fan_out))
            return 1.0

    Conv2D(4, 8, (1, 5), init=Spy()).build(nb.get_backend("numpy"), nb.Generator(0))
    assert seen == [(4 * 5, 8 * 5)]
