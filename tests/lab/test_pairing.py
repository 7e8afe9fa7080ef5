"""Adding an arm, a grid point or a replicate leaves every other arm's result unchanged."""

from normlab.lab.registry import get_experiment
from normlab.lab.seeding import Seeds


def _rows(metrics, keys):
    return {tuple(m[k] for k in keys): m for m in metrics}


def test_batch_size_arms_grid_points_and_seeds_are_independent():
    exp = get_experiment("batch-size")
    small = exp.Config(batch_sizes=(4, 16), norms=("batch", "none"), depth=2, width=16,
                       epochs=1, n_train=200, seeds=1)
    big = exp.Config(batch_sizes=(4, 8, 16), norms=("batch", "layer", "none"), depth=2,
                     width=16, epochs=1, n_train=200, seeds=2)
    a = _rows(exp.run(small, Seeds(exp.NAME, 0))["metrics"], ("norm", "batch_size", "seed"))
    b = _rows(exp.run(big, Seeds(exp.NAME, 0))["metrics"], ("norm", "batch_size", "seed"))
    assert len(b) == 3 * 3 * 2 and set(a) < set(b)
    for key, row in a.items():
        assert row == b[key], key  # bit-identical accuracy
    # and the arms really differ from each other (the test could fail)
    assert len({b[("batch", 4, 0)]["val_acc"], b[("layer", 4, 0)]["val_acc"],
                b[("batch", 4, 1)]["val_acc"]}) == 3


def test_learning_rate_grid_point_does_not_change_the_others():
    exp = get_experiment("learning-rate")
    kw = dict(depth=2, width=16, min_exp=-2.0, max_exp=0.0, steps=15, n_train=200, seeds=1)
    two = exp.run(exp.Config(n_lrs=2, **kw), Seeds(exp.NAME, 0))["table"]
    three = exp.run(exp.Config(n_lrs=3, **kw), Seeds(exp.NAME, 0))["table"]
    for norm in ("none", "batch"):
        by_lr = {r["lr"]: r for r in three[norm]}
        assert len(by_lr) == 3
        for row in two[norm]:
            assert row == by_lr[row["lr"]], (norm, row["lr"])


def test_init_training_adding_an_init_does_not_change_the_others():
    exp = get_experiment("init-training")
    kw = dict(nets=("tanh10",), width=16, epochs=1, n_train=200, seeds=1)
    one = exp.run(exp.Config(inits=("he",), **kw), Seeds(exp.NAME, 0))["runs"]
    two = exp.run(exp.Config(inits=("xavier", "he"), **kw), Seeds(exp.NAME, 0))["runs"]
    for key in ("tanh10/he/none", "tanh10/he/batch"):
        assert one[key] == two[key], key
    assert two["tanh10/xavier/none"] != two["tanh10/he/none"]
