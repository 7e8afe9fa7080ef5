"""One resumable HTTP(S) GET into a ``.part`` file, with a tqdm progress bar (stdlib urllib).

``fetch(url, part)`` appends to an existing ``part`` file with a ``Range: bytes=<size>-``
request when the server answers ``206 Partial Content`` starting at that byte; a ``200``
(the server ignores ranges) or a ``416`` restarts the file from zero, cleanly, except a
``416`` saying the file is exactly as long as the part (a crash after the last byte). A transfer
cut short (fewer bytes than ``Content-Length`` / ``Content-Range`` announced) is resumed
automatically up to ``retries`` times; after that the partial file is kept, so the next call
resumes it. Checksums are the caller's business (``normlab.data.download``): this module
only moves bytes. Every failure is a :class:`DownloadError` with a one-line message.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from normlab.errors import NormlabOSError

__all__ = ["DownloadError", "fetch", "NO_NETWORK_HINT"]

_CHUNK = 1 << 16
NO_NETWORK_HINT = (
    "No network? Point mirror= (or $NORMLAB_MIRROR) at a reachable mirror or a local folder "
    "holding <name>/<file>, or pass root= to a folder with the extracted data."
)


class DownloadError(NormlabOSError):
    """A transfer failed: server error, no network, or a connection cut short."""


class _Cut(Exception):
    """The body ended early after ``got`` bytes (of ``total``, when announced)."""

    def __init__(self, got: int, total: int | None):
        super().__init__(got, total)
        self.got, self.total = got, total


class _Restart(Exception):
    """The server did not continue where the partial file ends: start from zero."""


class _Complete(Exception):
    """416 with ``Content-Range: bytes */<size of the partial file>``: it is all there."""


def _progress_on(progress) -> bool:
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return bool(progress)


def _open(url: str, start: int, timeout: float, owner: str):
    req = urllib.request.Request(url, headers={"User-Agent": "normlab-download"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https/file only)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:
            total = (e.headers.get("Content-Range") or "").removeprefix("bytes */")
            e.close()
            if total.isdigit() and int(total) == start:  # crashed after the last byte
                raise _Complete from None
            raise _Restart from None  # the partial file is longer than the served file
        e.close()
        raise DownloadError(
            f"{owner}: expected HTTP 200 from {url}, got HTTP {e.code} ({e.reason}). Check the "
            "URL or mirror, or try again later."
        ) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"{owner}: expected to reach {url}, got {reason}. {NO_NETWORK_HINT}"
        ) from None


def _content_range_start(value: str | None) -> tuple[int, int | None] | None:
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (value or "").strip())
    if m is None:
        return None
    return int(m[1]), (None if m[3] == "*" else int(m[3]))


def _fetch_once(url: str, part: Path, progress, timeout: float, owner: str) -> None:
    from tqdm import tqdm  # noqa: PLC0415 (a dependency, imported only when downloading)

    have = part.stat().st_size if part.exists() else 0
    resp = _open(url, have, timeout, owner)
    with resp:
        status = resp.getcode() or 200  # file:// answers None
        if status == 206:
            cr = _content_range_start(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != have:
                raise _Restart
            total, mode = cr[1], "ab"
        elif status == 200:
            length = resp.headers.get("Content-Length")
            have, mode = 0, "wb"  # no range support (or a fresh start): from byte zero
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"{owner}: expected HTTP 200 or 206 from {url}, got HTTP "
                                f"{status}. Check the URL or mirror.")
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name.removesuffix(".part"), disable=not _progress_on(progress),
                   leave=False)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (http.client.IncompleteRead, ConnectionError, socket.timeout,
                            OSError):
                        chunk = None
                    if not chunk:
                        f.flush()
                        os.fsync(f.fileno())
                        if chunk is None or (total is not None and have < total):
                            raise _Cut(have, total)
                        break
                    f.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()


def fetch(url: str, part, *, retries: int = 3, progress=None, timeout: float = 60.0,
          owner: str = "download") -> Path:
    """Download ``url`` into ``part``, continuing an existing partial file where possible.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` URL.
    part : path
        The temporary file (conventionally ``<final name>.part``); kept after a failure so
        that the next call resumes it.
    retries : int
        Automatic resumptions after a connection cut short.
    progress : None or bool
        tqdm bar; ``None`` shows it only when stderr is a terminal.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    Path
        ``part``, holding the complete body (not yet verified).

    Raises
    ------
    DownloadError
        HTTP error status (says which and the URL), unreachable host (says how to use a
        mirror or local folder), or a transfer still cut short after ``retries`` resumptions.
    """
    part = Path(part)
    cuts = restarts = 0
    while True:
        try:
            _fetch_once(url, part, progress, timeout, owner)
            return part
        except _Complete:
            return part
        except _Restart:
            restarts += 1
            part.unlink(missing_ok=True)
            if restarts > 2:
                raise DownloadError(f"{owner}: expected {url} to continue a partial download, "
                                    "got inconsistent ranges twice. Try again later.") from None
        except _Cut as e:
            cuts += 1
            if cuts > retries:
                of = f" of {e.total}" if e.total is not None else ""
                raise DownloadError(
                    f"{owner}: expected the whole of {url}, got {e.got}{of} bytes before the "
                    f"connection dropped. Run again to resume from the partial file {part}."
                ) from None
