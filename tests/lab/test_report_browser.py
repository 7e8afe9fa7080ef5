"""Open the HTML report in headless Chromium and check that the screenshot shows figures."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from normlab.lab.report import write_report
from normlab.lab.runs import run_experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _screenshot(page, png, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
           f"--screenshot={png}", "--window-size=1200,1600", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed here (.ci/run installs it)")
def test_report_screenshot_shows_the_figures(tmp_path):
    import matplotlib.image as mpimg

    run_dir = run_experiment("activation-stats", smoke=True, out=tmp_path / "runs")
    page = write_report([run_dir], tmp_path / "report.html")
    png = tmp_path / "shot.png"
    _screenshot(page, png, tmp_path)
    img = mpimg.imread(png)[..., :3]
    # matplotlib's first colour (C0, #1f77b4) only appears if the inlined figures rendered
    c0 = np.array([0x1F, 0x77, 0xB4]) / 255.0
    near = np.all(np.abs(img - c0) < 0.06, axis=-1).mean()
    assert near > 1e-3, f"fraction of C0-blue pixels {near:.2e}: figures not visible"

    # control: the same page without its images shows no such pixels
    bare = tmp_path / "bare.html"
    bare.write_text(page.read_text().replace("data:image/png;base64,", "data:,"))
    _screenshot(bare, tmp_path / "bare.png", tmp_path)
    img2 = mpimg.imread(tmp_path / "bare.png")[..., :3]
    assert np.all(np.abs(img2 - c0) < 0.06, axis=-1).mean() < near / 10
