"""The course's image-grid helpers: layout (shape, tile positions) and value ranges."""

import math

import numpy as np
import pytest

from normlab.cs231n.vis_utils import vis_grid, vis_nn, visualize_grid


@pytest.mark.parametrize("N, padding", [(1, 1), (5, 1), (9, 0), (10, 3), (32, 1)])
def test_visualize_grid_shape_and_range(N, padding):
    rng = np.random.default_rng(N)
    H, W, C = 7, 5, 3
    Xs = rng.standard_normal((N, H, W, C)) * 4 - 2
    grid = visualize_grid(Xs, ubound=255.0, padding=padding)
    G = math.ceil(math.sqrt(N))
    assert grid.shape == (G * H + (G - 1) * padding, G * W + (G - 1) * padding, C)
    assert grid.min() == 0.0 and grid.max() == pytest.approx(255.0)
    for n in range(G * G):
        r, c = divmod(n, G)
        y, x = r * (H + padding), c * (W + padding)
        tile = grid[y:y + H, x:x + W]
        if n < N:  # every image on its own min-max scale: its min is 0, its max ubound
            x = Xs[n]
            np.testing.assert_allclose(tile, 255.0 * (x - x.min()) / (x.max() - x.min()),
                                       rtol=1e-12, atol=1e-12)
        else:
            assert np.all(tile == 0)
    if padding:  # the gaps between tiles stay 0
        assert np.all(grid[H:H + padding] == 0) and np.all(grid[:, W:W + padding] == 0)


def test_visualize_grid_scales_each_image_separately_and_takes_ubound():
    Xs = np.stack([np.full((2, 2, 1), 0.0), np.full((2, 2, 1), 100.0)])
    Xs[0, 0, 0, 0], Xs[1, 0, 0, 0] = 1.0, 300.0
    grid = visualize_grid(Xs, ubound=1.0, padding=0)
    assert grid.shape == (4, 4, 1)
    assert grid[0, 0, 0] == 1.0 and grid[0, 2, 0] == 1.0  # both maxima reach ubound
    assert grid[1, 1, 0] == 0.0 and grid[1, 3, 0] == 0.0  # both minima reach 0


def test_visualize_grid_constant_image_is_zero_not_nan():
    grid = visualize_grid(np.ones((2, 3, 3, 1)))
    assert np.all(grid == 0) and not np.isnan(grid).any()


def test_vis_grid_layout_and_joint_scaling():
    Xs = np.arange(5 * 2 * 3 * 1, dtype=np.float64).reshape(5, 2, 3, 1)
    G = vis_grid(Xs)
    assert G.shape == (3 * 3, 3 * 4, 1)  # ceil(sqrt(5)) = 3 tiles, a gap after each
    assert G.min() == 0.0 and G.max() == 1.0
    scale = lambda v: (v - Xs.min()) / (Xs.max() - Xs.min())  # noqa: E731
    np.testing.assert_allclose(G[3:5, 0:3], scale(Xs[3]))  # tile 3: row 1, column 0
    assert np.all(G[2] == 0.0)  # gaps hold the smallest value, i.e. 0 after scaling


def test_vis_nn_rows_as_given():
    rng = np.random.default_rng(0)
    rows = [[rng.random((4, 4, 3)) for _ in range(3)] for _ in range(2)]
    G = vis_nn(rows)
    assert G.shape == (2 * 5, 3 * 5, 3)
    assert G.min() == 0.0 and G.max() == 1.0
    lo = min(min(float(im.min()) for im in r) for r in rows)
    np.testing.assert_allclose(G[5:9, 10:14], (rows[1][2] - lo) / (1.0 - lo))


def test_errors():
    with pytest.raises(ValueError, match=r"visualize_grid: expected a non-empty 4D array"):
        visualize_grid(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="expected padding a non-negative int"):
        visualize_grid(np.zeros((1, 3, 3, 1)), padding=-1)
    with pytest.raises(ValueError, match="vis_grid: expected a non-empty 4D array"):
        vis_grid(np.zeros((0, 3, 3, 1)))
    with pytest.raises(ValueError, match="vis_nn: expected a non-empty list of equally long"):
        vis_nn([[np.zeros((2, 2, 1))], []])
    with pytest.raises(ValueError, match=r"vis_nn: expected images of one shape"):
        vis_nn([[np.zeros((2, 2, 1)), np.zeros((3, 2, 1))]])
