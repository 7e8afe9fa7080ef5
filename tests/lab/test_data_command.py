"""normlab data fetch: verified download from a loopback server, one-line errors."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from normlab.cli import main
from normlab.data import downloads
from tests.data._http_server import LoopbackServer


@pytest.fixture
def mnist_server(monkeypatch):
    raw = {name: gzip.compress(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + b"abc")
           for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    files = tuple(downloads.Resource(k, md5=hashlib.md5(v).hexdigest())  # noqa: S324
                  for k, v in raw.items())
    monkeypatch.setitem(downloads.SOURCES, "mnist",
                        dataclasses.replace(downloads.SOURCES["mnist"], files=files))
    srv = LoopbackServer({f"/mnist/{k}": v for k, v in raw.items()}).start()
    yield srv, raw
    srv.stop()


def test_fetch_downloads_and_verifies(tmp_path, capsys, mnist_server):
    srv, raw = mnist_server
    assert main(["data", "fetch", "mnist", "--root", str(tmp_path), "--mirror", srv.url,
                 "--no-progress"]) == 0
    assert f"mnist: verified and ready in {tmp_path / 'mnist'}" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (tmp_path / "mnist").iterdir()} == raw


def test_fetch_errors_are_one_line(tmp_path, capsys, mnist_server):
    srv, _ = mnist_server
    srv.status["/mnist/train-labels-idx1-ubyte.gz"] = 503
    assert main(["data", "fetch", "mnist", "--root", str(tmp_path), "--mirror", srv.url,
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "normlab data fetch: download: expected HTTP 200 from " \
        f"{srv.url}/mnist/train-labels-idx1-ubyte.gz, got HTTP 503" in err
    assert main(["data", "fetch", "imagenet"]) == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_train_download_fetches_verifies_and_trains(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = pickle.dumps({b"labels": [i % 10 for i in range(20)],
                                 b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8)},
                                protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    res = downloads.Resource("cifar-10-python.tar.gz", sha256=hashlib.sha256(archive).hexdigest())
    monkeypatch.setitem(downloads.SOURCES, "cifar10",
                        dataclasses.replace(downloads.SOURCES["cifar10"], files=(res,)))
    srv = LoopbackServer({"/cifar10/cifar-10-python.tar.gz": archive}).start()
    try:
        monkeypatch.setenv("NORMLAB_MIRROR", srv.url)
        monkeypatch.setenv("NORMLAB_DATA", str(tmp_path / "data"))
        argv = ["train", "--model", "mlp", "--data", "cifar10", "--download", "--hidden", "8",
                "--epochs", "1", "--batch-size", "16", "--no-progress"]
        assert main(argv + ["--out", str(tmp_path / "runs")]) == 0
        assert "trained mlp on cifar10" in capsys.readouterr().out
        assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
        assert len(srv.log) == 1
        # The second run finds the verified folder: no transfer.
        assert main(argv + ["--out", str(tmp_path / "again")]) == 0
        assert len(srv.log) == 1
    finally:
        srv.stop()
