"""Preprocessing: closed-form statistics, whitening gives identity covariance, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from normlab.data.preprocessing import PCA, Centering, NotFittedError, Standardizer, ZCAWhitening


def _correlated(rng, N=4000, D=6):
    """float64 data with correlated features; every covariance eigenvalue is >= 100 >> eps."""
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    stds = np.linspace(10.0, 100.0, D)
    return (rng.standard_normal((N, D)) * stds) @ Q + rng.standard_normal(D) * 5.0


def _images(rng, N=50, C=3, H=4, W=5):
    offsets = np.arange(C, dtype=np.float64)[None, :, None, None] * 10.0
    return rng.standard_normal((N, C, H, W)) * 2.0 + offsets


# ---------------------------------------------------------------- centring / standardising


def test_feature_centering_matches_column_means(rng):
    X = rng.standard_normal((20, 7)) + 3.0
    c = Centering().fit(X)
    np.testing.assert_allclose(c.mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(c.transform(X).mean(axis=0), 0.0, atol=1e-12)
    assert c.mean_.shape == (7,)


def test_channel_centering_uses_mean_over_n_h_w(rng):
    X = _images(rng)
    c = Centering(mode="channel").fit(X)
    assert c.mean_.shape == (3,)
    np.testing.assert_allclose(c.mean_, X.mean(axis=(0, 2, 3)), rtol=1e-12)
    out = c.transform(X)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    # A single pixel keeps its offset from the channel mean.
    np.testing.assert_allclose(out[1, 2, 3, 4], X[1, 2, 3, 4] - X[:, 2].mean(), rtol=1e-12)


def test_channel_mode_accepts_other_spatial_size(rng):
    c = Centering(mode="channel").fit(_images(rng))
    out = c.transform(_images(rng, N=2, H=7, W=7))
    assert out.shape == (2, 3, 7, 7)


def test_pixel_centering_subtracts_mean_image(rng):
    X = _images(rng)
    c = Centering(mode="pixel").fit(X)
    assert c.mean_.shape == (3, 4, 5)
    np.testing.assert_allclose(c.mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(c.transform(X).mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("mode", ["feature", "channel", "pixel"])
def test_standardizer_gives_zero_mean_unit_variance(rng, mode):
    X = _images(rng) * np.array([1.0, 5.0, 0.1])[None, :, None, None]
    s = Standardizer(mode=mode).fit(X)
    out = s.transform(X)
    axes = (0, 2, 3) if mode == "channel" else 0
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=axes), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s.inverse_transform(out), X, rtol=1e-12, atol=1e-12)


def test_standardizer_large_mean_small_std_float32(rng):
    X = (1e4 + 1e-2 * rng.standard_normal((500, 3))).astype(np.float32)
    out = Standardizer().fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-3)


def test_constant_feature_maps_to_zero_not_nan():
    X = np.ones((5, 2))
    X[:, 1] = np.arange(5.0)
    out = Standardizer().fit_transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 0], 0.0)


def test_dtype_kept_and_input_not_mutated(rng):
    X = rng.standard_normal((10, 3)).astype(np.float32)
    before = X.copy()
    for t in (Centering(), Standardizer(), PCA(), ZCAWhitening()):
        assert t.fit_transform(X).dtype == np.float32
    np.testing.assert_array_equal(X, before)


def test_integer_input_gives_float32():
    X = np.arange(24, dtype=np.uint8).reshape(6, 4)
    assert Centering().fit_transform(X).dtype == np.float32


# ---------------------------------------------------------------- PCA / ZCA


def test_pca_whitening_gives_identity_covariance(rng):
    X = _correlated(rng)
    Z = PCA(whiten=True).fit_transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False), np.eye(6), atol=1e-6)


def test_pca_components_sorted_and_matches_sklearn(rng):
    from sklearn.decomposition import PCA as SkPCA

    X = _correlated(rng, N=300)
    p = PCA(n_components=4).fit(X)
    sk = SkPCA(n_components=4, svd_solver="full").fit(X)
    assert np.all(np.diff(p.explained_variance_) <= 0)
    np.testing.assert_allclose(p.explained_variance_, sk.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(p.explained_variance_ratio_, sk.explained_variance_ratio_,
                               rtol=1e-9)
    # Same subspace and, with the shared sign convention, the same vectors.
    np.testing.assert_allclose(p.components_, sk.components_, atol=1e-9)
    np.testing.assert_allclose(p.transform(X), sk.transform(X), rtol=1e-8, atol=1e-8)


def test_pca_sign_convention_is_deterministic(rng):
    X = _correlated(rng, N=200)
    p = PCA().fit(X)
    pivot = np.abs(p.components_).argmax(axis=1)
    assert np.all(p.components_[np.arange(6), pivot] > 0)
    np.testing.assert_array_equal(PCA().fit(X).components_, p.components_)


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_inverse_round_trip_on_images(rng, whiten):
    X = _images(rng, N=100, C=2, H=3, W=3)
    p = PCA(whiten=whiten).fit(X)
    Z = p.transform(X)
    assert Z.shape == (100, 18)
    back = p.inverse_transform(Z)
    assert back.shape == X.shape
    np.testing.assert_allclose(back, X, rtol=1e-10, atol=1e-10)


def test_pca_truncated_is_best_rank_k(rng):
    # Data on a 2-D plane in 5-D: two components reconstruct it exactly.
    X = rng.standard_normal((100, 2)) @ rng.standard_normal((2, 5)) + 1.0
    p = PCA(n_components=2).fit(X)
    np.testing.assert_allclose(p.inverse_transform(p.transform(X)), X, atol=1e-10)


def test_zca_whitening_gives_identity_covariance_and_keeps_shape(rng):
    X = _correlated(rng, D=12).reshape(-1, 3, 2, 2)
    z = ZCAWhitening().fit(X)
    out = z.transform(X)
    assert out.shape == X.shape
    np.testing.assert_allclose(np.cov(out.reshape(len(X), -1), rowvar=False), np.eye(12),
                               atol=1e-6)
    np.testing.assert_allclose(z.whitening_, z.whitening_.T, atol=1e-12)
    np.testing.assert_allclose(z.inverse_transform(out), X, rtol=1e-10, atol=1e-9)


def test_zca_matches_closed_form(rng):
    X = _correlated(rng, N=500, D=4)
    z = ZCAWhitening(eps=0.1).fit(X)
    Xc = X - X.mean(axis=0)
    S, U = np.linalg.eigh(np.cov(X, rowvar=False))
    W = U @ np.diag(1.0 / np.sqrt(S + 0.1)) @ U.T
    np.testing.assert_allclose(z.transform(X), Xc @ W, rtol=1e-9, atol=1e-9)


def test_fit_on_train_apply_to_test(rng):
    X = _correlated(rng)
    train, test = X[:3000], X[3000:]
    p = PCA(whiten=True).fit(train)
    np.testing.assert_allclose(np.cov(p.transform(train), rowvar=False), np.eye(6), atol=1e-6)
    # Test data uses the training statistics, so it is only approximately white.
    assert not np.allclose(p.transform(test).mean(axis=0), 0.0, atol=1e-6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("t", [Centering(), Standardizer(), PCA(), ZCAWhitening()])
def test_transform_before_fit_raises(t):
    with pytest.raises(NotFittedError, match="never fitted. Call fit"):
        t.transform(np.zeros((3, 2)))
    with pytest.raises(NotFittedError, match="never fitted"):
        t.inverse_transform(np.zeros((3, 2)))
    assert issubclass(NotFittedError, RuntimeError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize("t", [Centering(), Standardizer(), PCA(), ZCAWhitening()])
def test_feature_count_mismatch_raises(t, rng):
    t.fit(rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match=r"expected samples of shape \(4,\) \(as in fit\), got \(5,\)"):
        t.transform(rng.standard_normal((3, 5)))


def test_channel_mismatch_and_missing_channel_axis(rng):
    c = Centering(mode="channel").fit(_images(rng))
    with pytest.raises(ValueError, match="expected input with 3 channels on axis 1"):
        c.transform(_images(rng, C=2))
    with pytest.raises(ValueError, match="expected input with a channel axis"):
        Standardizer(mode="channel").fit(rng.standard_normal((5, 3)))


def test_pca_inverse_shape_error(rng):
    p = PCA(n_components=2).fit(rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match=r"PCA: expected projections of shape \(N, 2\)"):
        p.inverse_transform(np.zeros((3, 4)))


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match="Centering: expected mode in"):
        Centering(mode="row")
    with pytest.raises(ValueError, match=r"Standardizer: expected eps >= 0, got -1.0"):
        Standardizer(eps=-1.0)
    with pytest.raises(TypeError, match="ZCAWhitening: expected eps to be a float, got str"):
        ZCAWhitening(eps="1")
    with pytest.raises(ValueError, match="PCA: expected n_components >= 1, got 0"):
        PCA(n_components=0)
    with pytest.raises(TypeError, match="PCA: expected n_components to be an int or None"):
        PCA(n_components=0.5)


def test_hyperparameters_stored_verbatim():
    p = PCA(n_components=3, whiten=True, eps=1e-3)
    assert (p.n_components, p.whiten, p.eps) == (3, True, 1e-3)
    assert Standardizer(mode="pixel", eps=0.5).mode == "pixel"


def test_input_errors(rng):
    with pytest.raises(ValueError, match=r"PCA: expected n_components <= 3 \(the number"):
        PCA(n_components=4).fit(rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match="expected input of shape \\(N, D\\) or \\(N, C, H, W\\), got 1D"):
        Centering().fit(np.zeros(5))
    with pytest.raises(TypeError, match="Centering: expected a NumPy or CuPy array, got list"):
        Centering().fit([[1.0, 2.0]])
    with pytest.raises(TypeError, match="expected a real-valued array, got dtype complex128"):
        Centering().fit(np.zeros((2, 2), dtype=complex))
    with pytest.raises(ValueError, match="PCA: expected at least 2 samples to fit, got 1"):
        PCA().fit(np.zeros((1, 3)))
    bad = np.zeros((4, 2))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="ZCAWhitening: expected finite values, got NaN"):
        ZCAWhitening().fit(bad)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [Centering, Standardizer, PCA, ZCAWhitening])
def test_cupy_matches_numpy(cls, rng):
    from normlab import backend

    X = _correlated(rng, N=200, D=4).reshape(200, 1, 2, 2)
    t_cpu, t_gpu = cls().fit(X), cls().fit(backend.to_device(X, "cuda"))
    out = t_gpu.transform(backend.to_device(X, "cuda"))
    assert backend.device_of(out) == "cuda"
    np.testing.assert_allclose(backend.to_numpy(out), t_cpu.transform(X), rtol=1e-9, atol=1e-9)
