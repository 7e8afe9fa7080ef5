"""Batch Renorm's warm-up schedule and the callback that drives it during training."""

from functools import partial

import numpy as np
import pytest

from normlab import nn
from normlab.lab.renorm_warmup import RenormSchedule, RenormWarmup, renorm_bounds
from normlab.lab.seeding import Seeds
from normlab.lab.setups import mlp
from normlab.lab.training import train_run
from normlab.train import Callback


def test_the_papers_schedule():
    """Ioffe 2017 §4: BN for 5k steps, d_max 5 at 25k, r_max 3 at 40k, linear in between."""
    s = RenormSchedule(5000, 25000, 40000, r_max=3.0, d_max=5.0)
    assert renorm_bounds(s, 0) == (1.0, 0.0)
    assert renorm_bounds(s, 5000) == (1.0, 0.0)
    r, d = renorm_bounds(s, 15000)
    assert d == pytest.approx(2.5) and r == pytest.approx(1.0 + 2.0 * 10000 / 35000)
    assert renorm_bounds(s, 25000) == (pytest.approx(1.0 + 2.0 * 20000 / 35000), 5.0)
    assert renorm_bounds(s, 40000) == (3.0, 5.0)
    assert renorm_bounds(s, 10 ** 6) == (3.0, 5.0)


def test_no_warmup_gives_the_final_bounds_from_the_first_step():
    assert renorm_bounds(RenormSchedule(r_max=2.0, d_max=1.0), 0) == (2.0, 1.0)


@pytest.mark.parametrize("kw", [{"warmup": 10, "d_full": 5, "r_full": 20},
                                {"warmup": -1, "d_full": 5, "r_full": 20}])
def test_a_schedule_that_ends_before_it_starts_is_refused(kw):
    with pytest.raises(ValueError, match=r"RenormSchedule: expected 0 <= warmup <= d_full and "
                                         r"warmup <= r_full, got warmup="):
        RenormSchedule(**kw)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 40)).astype(np.float32), rng.integers(0, 10, n)


def _fit(norm, steps, callbacks_for):
    train = _data()
    model = mlp([16, 16], Seeds("t"), 0, norm=norm)
    train_run(model, train, _data(32, 1), lr=0.05, batch_size=16, steps=steps,
              optimizer="momentum", rng=np.random.default_rng(2),
              callbacks=callbacks_for(model))
    return model


def test_while_the_warmup_lasts_batch_renorm_trains_exactly_as_batch_norm():
    renorm = partial(nn.BatchRenorm1d, momentum=0.01)
    a = _fit(renorm, 12, lambda m: [RenormWarmup(m, RenormSchedule(20, 30, 40))])
    b = _fit(partial(nn.BatchNorm1d, momentum=0.01), 12, lambda m: [])
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # and without the warm-up the corrections change the run
    c = _fit(renorm, 12, lambda m: [])
    assert not all(np.array_equal(v, c.state_dict()[k]) for k, v in sa.items())


def test_each_step_runs_with_that_steps_bounds():
    schedule = RenormSchedule(2, 6, 10)
    seen = []

    class Spy(Callback):  # runs after RenormWarmup: the bounds of the next step
        def __init__(self, model):
            self.layers = [m for m in model.modules() if isinstance(m, nn.BatchRenorm1d)]

        def on_train_begin(self, trainer, logs):
            seen.append({(m.r_max, m.d_max) for m in self.layers})

        def on_step_end(self, trainer, logs):
            seen.append({(m.r_max, m.d_max) for m in self.layers})

    model = _fit(nn.BatchRenorm1d, 12,
                 lambda m: [RenormWarmup(m, schedule), Spy(m)])
    assert len(seen) == 13 and all(len(s) == 1 for s in seen)  # every layer alike
    assert [s.pop() for s in seen] == [renorm_bounds(schedule, k) for k in range(13)]
    layers = [m for m in model.modules() if isinstance(m, nn.BatchRenorm1d)]
    assert len(layers) == 2 and all((m.r_max, m.d_max) == (3.0, 5.0) for m in layers)
