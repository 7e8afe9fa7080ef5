"""normlab.data.downloads: verified, resumable, crash-safe fetching from a loopback server.

The files are tiny archives and IDX files made here; their digests are passed in through
``files=`` or by patching ``SOURCES``, so no real digest or network is involved.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from normlab.data import _archive, load_dataset
from normlab.data import downloads as download_mod
from normlab.data.downloads import (SOURCES, ChecksumError, DownloadError, Resource,
                                   UnsafeArchiveError, download, verify_file)
from tests.data._http_server import LoopbackServer

CIFAR_TGZ = "cifar-10-python.tar.gz"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()  # noqa: S324 (the published digests are MD5)


def _cifar_batches(rng, n=3) -> dict[str, bytes]:
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        out[name] = pickle.dumps(d, protocol=2)
    return out


def _tgz(entries) -> bytes:
    """A .tar.gz from ``(name, bytes | None for a folder | ('sym', target))`` entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _cifar_tgz(rng):
    batches = _cifar_batches(rng)
    entries = [("cifar-10-batches-py", None)]
    entries += [(f"cifar-10-batches-py/{k}", v) for k, v in batches.items()]
    return _tgz(entries), batches


def _idx_gz(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + arr.astype(np.uint8).tobytes())


def _mnist_files(rng):
    return {
        "train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (20, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_gz(np.arange(20) % 10),
        "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(np.arange(10)),
    }


@pytest.fixture
def server():
    srv = LoopbackServer({}).start()
    yield srv
    srv.stop()


@pytest.fixture
def cifar(server, rng):
    data, batches = _cifar_tgz(rng)
    server.files[f"/cifar10/{CIFAR_TGZ}"] = data
    return data, batches, [Resource(CIFAR_TGZ, sha256=_sha(data), md5=_md5(data))]


def test_archive_download_verifies_unpacks_and_is_reused(tmp_path, server, cifar):
    data, batches, files = cifar
    folder = download("cifar10", tmp_path, server.url, files=files)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(batches)
    assert (folder / "data_batch_2").read_bytes() == batches["data_batch_2"]
    assert (tmp_path / CIFAR_TGZ).read_bytes() == data
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".tmp-*"))
    assert server.log == [(f"/cifar10/{CIFAR_TGZ}", None)]
    assert download("cifar10", tmp_path, server.url, files=files) == folder
    assert len(server.log) == 1  # a complete folder needs no network


def test_load_dataset_download_true_with_patched_registry(tmp_path, server, cifar, monkeypatch):
    _, batches, files = cifar
    monkeypatch.setitem(SOURCES, "cifar10", dataclasses.replace(SOURCES["cifar10"],
                                                                files=tuple(files)))
    monkeypatch.setenv("NORMLAB_MIRROR", server.url)  # the env var serves as the mirror
    ds = load_dataset("cifar10", download=True, root=tmp_path, val_fraction=0.0)
    assert len(ds.y_train) == 15 and len(ds.y_test) == 3
    test = pickle.loads(batches["test_batch"])
    np.testing.assert_array_equal(ds.y_test, test[b"labels"])
    np.testing.assert_array_equal(np.rint(ds.X_test * 255).astype(np.uint8).reshape(3, -1),
                                  test[b"data"])


def test_idx_files_download_md5_only(tmp_path, server, rng):
    raw = _mnist_files(rng)
    for k, v in raw.items():
        server.files[f"/mnist/{k}"] = v
    files = [Resource(k, md5=_md5(v)) for k, v in raw.items()]
    folder = download("mnist", tmp_path, server.url, files=files)
    assert folder == tmp_path / "mnist"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == raw
    ds = load_dataset("mnist", root=folder, val_fraction=0.0)
    np.testing.assert_array_equal(ds.y_test, np.arange(10))
    n = len(server.log)
    download("mnist", tmp_path, server.url, files=files)  # present and verified: no fetch
    assert len(server.log) == n


def test_checksum_mismatch_deletes_the_partial_file_and_names_it(tmp_path, server, cifar):
    data, _, _ = cifar
    wrong = [Resource(CIFAR_TGZ, sha256="0" * 64)]
    with pytest.raises(ChecksumError, match=rf"download: expected sha256 0{{64}} for "
                       rf"{CIFAR_TGZ}, got {_sha(data)}\. The file was deleted"):
        download("cifar10", tmp_path, server.url, files=wrong)
    assert not (tmp_path / CIFAR_TGZ).exists()
    assert not (tmp_path / (CIFAR_TGZ + ".part")).exists()
    assert not (tmp_path / "cifar-10-batches-py").exists()
    with pytest.raises(ChecksumError, match="expected md5 " + "1" * 32):
        download("cifar10", tmp_path, server.url,
                 files=[Resource(CIFAR_TGZ, sha256=_sha(data), md5="1" * 32)])


def test_cut_transfer_is_resumed_with_a_range_request(tmp_path, server, cifar):
    data, batches, files = cifar
    path = f"/cifar10/{CIFAR_TGZ}"
    server.cut.add(path)
    folder = download("cifar10", tmp_path, server.url, files=files)
    half = (len(data)) // 2
    assert server.log == [(path, None), (path, f"bytes={half}-")]
    assert (folder / "test_batch").read_bytes() == batches["test_batch"]


def test_cut_transfer_without_retries_keeps_the_part_for_the_next_call(tmp_path, server,
                                                                          cifar):
    data, _, files = cifar
    path = f"/cifar10/{CIFAR_TGZ}"
    server.cut.add(path)
    half = len(data) // 2
    with pytest.raises(DownloadError, match=rf"got {half} of {len(data)} bytes before the "
                       r"connection dropped\. Run again to resume"):
        download("cifar10", tmp_path, server.url, files=files, retries=0)
    part = tmp_path / (CIFAR_TGZ + ".part")
    assert part.read_bytes() == data[:half]
    assert not (tmp_path / "cifar-10-batches-py").exists()
    download("cifar10", tmp_path, server.url, files=files, retries=0)
    assert server.log[-1] == (path, f"bytes={half}-")
    assert (tmp_path / CIFAR_TGZ).read_bytes() == data and not part.exists()


def test_server_without_range_support_restarts_cleanly(tmp_path, server, cifar):
    data, _, files = cifar
    (tmp_path / (CIFAR_TGZ + ".part")).write_bytes(b"stale bytes of an older attempt")
    server.set_ignore_range(True)
    download("cifar10", tmp_path, server.url, files=files)
    assert server.log[0][1] == "bytes=31-"  # asked to resume, answered with the whole file
    assert (tmp_path / CIFAR_TGZ).read_bytes() == data


def test_complete_part_left_by_a_crash_is_verified_without_a_transfer(tmp_path, server,
                                                                      cifar):
    data, _, files = cifar
    (tmp_path / (CIFAR_TGZ + ".part")).write_bytes(data)
    download("cifar10", tmp_path, server.url, files=files)  # 416 bytes */len: all there
    assert server.log == [(f"/cifar10/{CIFAR_TGZ}", f"bytes={len(data)}-")]
    assert (tmp_path / CIFAR_TGZ).read_bytes() == data


def test_partial_file_longer_than_the_served_file_restarts(tmp_path, server, cifar):
    data, _, files = cifar
    (tmp_path / (CIFAR_TGZ + ".part")).write_bytes(b"x" * (len(data) + 5))
    download("cifar10", tmp_path, server.url, files=files)  # 416, then a fresh request
    assert [r for _, r in server.log] == [f"bytes={len(data) + 5}-", None]
    assert (tmp_path / CIFAR_TGZ).read_bytes() == data


@pytest.mark.parametrize("code", [500, 404])
def test_server_error_names_status_and_url(tmp_path, server, cifar, code):
    server.status[f"/cifar10/{CIFAR_TGZ}"] = code
    with pytest.raises(DownloadError, match=rf"download: expected HTTP 200 from "
                       rf"{server.url}/cifar10/{CIFAR_TGZ}, got HTTP {code} "):
        download("cifar10", tmp_path, server.url, files=cifar[2])
    assert not list(tmp_path.iterdir()) or not (tmp_path / "cifar-10-batches-py").exists()


def test_unreachable_host_says_how_to_use_a_mirror(tmp_path, cifar):
    dead = LoopbackServer({}).start()
    url = dead.url
    dead.stop()  # nothing listens there any more: connection refused
    with pytest.raises(DownloadError, match=r"expected to reach .*got .*No network\? Point "
                       r"mirror= \(or \$NORMLAB_MIRROR\)"):
        download("cifar10", tmp_path, url, files=cifar[2])


def test_local_folder_mirror(tmp_path, cifar):
    data, batches, files = cifar
    (tmp_path / "mirror" / "cifar10").mkdir(parents=True)
    (tmp_path / "mirror" / "cifar10" / CIFAR_TGZ).write_bytes(data)
    folder = download("cifar10", tmp_path / "data", tmp_path / "mirror", files=files)
    assert (folder / "data_batch_1").read_bytes() == batches["data_batch_1"]


@pytest.mark.parametrize("member, why", [
    ("../x", "'..' leaves the folder"),
    ("cifar-10-batches-py/../../x", "'..' leaves the folder"),
    ("/tmp/normlab-evil", "absolute path"),
    (("cifar-10-batches-py/link", ("sym", "../../outside")), "symbolic link to '../../outside'"),
    (("cifar-10-batches-py/abs", ("sym", "/etc/passwd")), "symbolic link to '/etc/passwd'"),
])
def test_malicious_archive_members_are_refused(tmp_path, server, member, why):
    entries = [("cifar-10-batches-py", None), ("cifar-10-batches-py/test_batch", b"ok")]
    entries.append(member if isinstance(member, tuple) else (member, b"evil"))
    data = _tgz(entries)
    server.files[f"/cifar10/{CIFAR_TGZ}"] = data
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError, match=rf"expected members inside the target folder, "
                       rf"got .* \({why}.*nothing was unpacked"):
        download("cifar10", root, server.url, files=[Resource(CIFAR_TGZ, sha256=_sha(data))])
    assert sorted(p.name for p in root.iterdir()) == [CIFAR_TGZ]  # verified, never unpacked
    assert not (tmp_path / "x").exists()


def test_symlink_inside_the_folder_is_allowed(tmp_path):
    data = _tgz([("top", None), ("top/a", b"A"), ("top/l", ("sym", "a"))])
    (tmp_path / "t.tgz").write_bytes(data)
    out = _archive.safe_unpack(tmp_path / "t.tgz", tmp_path, "top")
    assert (out / "l").read_bytes() == b"A"


def test_archive_without_the_expected_folder(tmp_path):
    (tmp_path / "t.tgz").write_bytes(_tgz([("other/a", b"A")]))
    with pytest.raises(ValueError, match=r"safe_unpack: expected a top folder 'top' in t\.tgz, "
                       r"got \['other'\]"):
        _archive.safe_unpack(tmp_path / "t.tgz", tmp_path, "top")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tgz"]


def test_interrupted_unpack_leaves_no_folder_and_the_next_call_completes(tmp_path, server,
                                                                         cifar, monkeypatch):
    data, batches, files = cifar
    real = shutil.copyfileobj
    calls = []

    def dying(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the unpack
        return real(*args, **kw)

    monkeypatch.setattr(_archive.shutil, "copyfileobj", dying)
    with pytest.raises(KeyboardInterrupt):
        download("cifar10", tmp_path, server.url, files=files)
    assert not (tmp_path / "cifar-10-batches-py").exists()
    assert not list(tmp_path.glob(".tmp-unpack-*"))
    monkeypatch.setattr(_archive.shutil, "copyfileobj", real)
    # A hard crash cannot clean up: its temporary folder must not be taken for the data.
    stale = tmp_path / ".tmp-unpack-cifar-10-batches-py-dead" / "cifar-10-batches-py"
    stale.mkdir(parents=True)
    (stale / "data_batch_1").write_bytes(b"half")
    n = len(server.log)
    folder = download("cifar10", tmp_path, server.url, files=files)
    assert len(server.log) == n  # the verified archive was kept: no second transfer
    assert sorted(p.name for p in folder.iterdir()) == sorted(batches)
    assert not list(tmp_path.glob(".tmp-unpack-*"))


def test_corrupt_file_in_place_is_fetched_again(tmp_path, server, rng):
    raw = _mnist_files(rng)
    for k, v in raw.items():
        server.files[f"/mnist/{k}"] = v
    files = [Resource(k, md5=_md5(v)) for k, v in raw.items()]
    download("mnist", tmp_path, server.url, files=files)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"bit rot")
    download("mnist", tmp_path, server.url, files=files)
    assert (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes() == \
        raw["t10k-labels-idx1-ubyte.gz"]


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="download: expected one of cifar10, cifar100, mnist, "
                       "fashion-mnist, got 'digits'"):
        download("digits", tmp_path)
    with pytest.raises(ValueError, match="load_dataset: expected download=True only for"):
        load_dataset("digits", download=True)
    with pytest.raises(ValueError, match="expected download=True with mirror="):
        load_dataset("cifar10", mirror="http://127.0.0.1:1")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected a sha256 or md5 digest for f"):
        verify_file(tmp_path / "f", Resource("f"))


def test_published_digests_are_well_formed():
    assert download_mod.SOURCES is SOURCES
    for name, source in SOURCES.items():
        for res in source.files:
            assert res.md5 is not None and len(res.md5) == 32, name
            assert res.sha256 is None or len(res.sha256) == 64, name
