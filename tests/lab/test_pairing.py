"""Adding an arm, a grid point or a replicate leaves every other arm's result unchanged."""

from normlab.lab.registry import get_experiment
from normlab.lab.seeding import Seeds


def _rows(metrics, keys):
    return {tuple(m[k] for k in keys): m for m in metrics}


def test_batch_size_arms_grid_points_and_seeds_are_independent():
    exp = get_experiment("batch-size")
    small = exp.Config(batch_sizes=(4, 16), norms=("batch", "none"), depth=2, width=16,
                       epochs=1, n_train=200, seeds=1, renorm_batch_sizes=())  # the sweep only
    big = exp.Config(batch_sizes=(4, 8, 16), norms=("batch", "layer", "none"), depth=2,
                     width=16, epochs=1, n_train=200, seeds=2, renorm_batch_sizes=())
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


def _recording(monkeypatch, module):
    """Wrap the experiment's train_run: record each arm's initial weights, data and batch rng."""
    from normlab.lab.seeding import layer_keys

    calls = []
    real = module.train_run

    def spy(model, train, val, *, rng, **kw):
        calls.append({"weights": {k: m.params["weight"].copy() for k, m in layer_keys(model)},
                      "norm": any("Norm" in type(m).__name__ for m in model.modules()),
                      "X": train[0].copy(), "rng": rng.bit_generator.state, **kw})
        return real(model, train, val, rng=rng, **kw)

    monkeypatch.setattr(module, "train_run", spy)
    return calls


def test_bn_vs_none_arms_start_from_the_same_weights_and_data(monkeypatch):
    import numpy as np

    exp = get_experiment("bn-vs-none")
    calls = _recording(monkeypatch, exp)
    exp.run(exp.Config(models=("mlp",), depth=2, width=8, epochs=1, n_train=100, seeds=2),
            Seeds(exp.NAME, 0))
    assert len(calls) == 4  # (none, batch) x 2 seeds
    by_arm = {(c["norm"], i % 2): c for i, c in enumerate(calls)}  # loop: norm, then seed
    for seed in (0, 1):
        plain, bn = by_arm[(False, seed)], by_arm[(True, seed)]
        assert list(plain["weights"]) == list(bn["weights"])
        for key in plain["weights"]:
            assert np.array_equal(plain["weights"][key], bn["weights"][key]), key
        assert np.array_equal(plain["X"], bn["X"]) and plain["rng"] == bn["rng"]
    assert not np.array_equal(by_arm[(False, 0)]["X"], by_arm[(False, 1)]["X"])


def test_weight_scale_arms_differ_only_by_the_scale(monkeypatch):
    import numpy as np

    exp = get_experiment("weight-scale")
    calls = _recording(monkeypatch, exp)
    cfg = exp.Config(layers=3, width=8, n_scales=2, min_exp=-2.0, max_exp=0.0, epochs=1,
                     n_train=100, seeds=1)
    exp.run(cfg, Seeds(exp.NAME, 0))
    assert len(calls) == 4  # loop: norm, scale
    (none_s, none_b, bn_s, bn_b) = calls
    for key in none_s["weights"]:
        np.testing.assert_allclose(none_b["weights"][key], 100.0 * none_s["weights"][key],
                                   rtol=2e-6)
        assert np.array_equal(none_b["weights"][key], bn_b["weights"][key])
        assert np.array_equal(none_s["weights"][key], bn_s["weights"][key])
    assert all(np.array_equal(c["X"], none_s["X"]) and c["rng"] == none_s["rng"] for c in calls)
