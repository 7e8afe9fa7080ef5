"""Safe, all-or-nothing unpacking of a ``.tar.gz`` data archive.

Every member is checked before a single byte is written: absolute names, ``..``
components, hard links, device files and symbolic links that resolve outside the target
are refused (the whole archive is rejected, naming the member). The archive is unpacked
into a hidden temporary folder beside the target and the expected top folder is then moved
into place with one ``os.replace``: an interrupted unpack (crash, Ctrl-C, full disk) never
leaves a half-filled folder that a later run would take for a complete data set. Stale
temporary folders of earlier crashes are removed first.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import tarfile
from pathlib import Path
from normlab.errors import DataError, NormlabValueError

__all__ = ["UnsafeArchiveError", "check_members", "safe_unpack"]


class UnsafeArchiveError(DataError):
    """An archive member would escape the target folder or is not a plain file/folder."""


def _bad(archive, member, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"safe_unpack: expected members inside the target folder, got {member.name!r} in "
        f"{Path(archive).name} ({why}). The archive is not trusted; nothing was unpacked."
    )


def _normal(name: str) -> str | None:
    """The member name as a clean relative POSIX path, or None when it escapes."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return None
    clean = posixpath.normpath(name)
    return None if clean.startswith("..") or clean == "." else clean


def check_members(tar: tarfile.TarFile, archive) -> list[tarfile.TarInfo]:
    """All members of ``tar`` if every one is safe, else raise :class:`UnsafeArchiveError`."""
    members = tar.getmembers()
    for m in members:
        name = _normal(m.name)
        if name is None:
            raise _bad(archive, m, "absolute path" if m.name.startswith(("/", "\\"))
                       else "'..' leaves the folder")
        if m.islnk():
            raise _bad(archive, m, "hard link")
        if m.issym():
            target = m.linkname
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or resolved.startswith("..") or resolved == "..":
                raise _bad(archive, m, f"symbolic link to {target!r} outside the folder")
        elif not (m.isfile() or m.isdir()):
            raise _bad(archive, m, "device, FIFO or other special file")
    return members


def _extract(tar: tarfile.TarFile, members, dest: Path) -> None:
    for m in members:
        out = dest / _normal(m.name)
        if m.isdir():
            out.mkdir(parents=True, exist_ok=True)
        elif m.issym():
            out.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.linkname, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            with src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)


def _tmp_prefix(folder: str) -> str:
    return f".tmp-unpack-{folder}-"


def safe_unpack(archive, root, folder: str) -> Path:
    """Unpack the ``.tar.gz`` ``archive`` and move its top folder ``folder`` to ``root/folder``.

    Parameters
    ----------
    archive : path
        A verified gzip-compressed tar file.
    root : path
        The parent folder; ``root/folder`` must not exist yet.
    folder : str
        The top-level folder the archive is expected to hold (e.g. ``cifar-10-batches-py``).

    Returns
    -------
    Path
        ``root/folder``.

    Raises
    ------
    UnsafeArchiveError
        For an absolute or ``..`` member name, a hard link, a special file or a symbolic
        link leaving the folder (nothing is written).
    ValueError
        If the archive does not hold ``folder``.
    """
    root = Path(root)
    final = root / folder
    for stale in root.glob(_tmp_prefix(folder) + "*"):  # left by a crash mid-unpack
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / (_tmp_prefix(folder) + secrets.token_hex(4))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = check_members(tar, archive)
            tmp.mkdir()
            _extract(tar, members, tmp)
        if not (tmp / folder).is_dir():
            raise NormlabValueError(f"safe_unpack: expected a top folder {folder!r} in "
                             f"{Path(archive).name}, got {sorted(p.name for p in tmp.iterdir())}.")
        os.replace(tmp / folder, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
