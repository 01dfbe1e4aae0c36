"""Atomic writes, checksums and JSON helpers shared by every stage.

Snakemake decides that a rule has finished by looking at its outputs. A rule that dies
halfway must therefore never leave an output behind that looks complete, or the next
run would build on a truncated file. Every artifact is written into a temporary sibling
(same folder, so the final ``rename`` stays on one file system and is atomic) and moved
into place only once it has been written completely.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from langarith import LangarithError

__all__ = [
    "atomic_dir",
    "atomic_file",
    "discarded_on_failure",
    "read_json",
    "sha256_file",
    "sha256_json",
    "write_json",
]

_CHUNK = 1 << 20

#: errno values of a full file system or an exhausted quota.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: How writers that do not raise ``OSError`` report them: safetensors raises
#: ``SafetensorError("... No space left on device (os error 28)")``.
_DISK_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")


#: How writers report a failed write without saying why: torch.save raises
#: ``RuntimeError("[enforce fail at inline_container.cc:...] . PytorchStreamWriter failed
#: writing file data/0: file write failed")`` (or "unexpected pos ...") on a full disk.
_WRITE_FAILED_TEXTS = ("file write failed", "pytorchstreamwriter failed", "unexpected pos")
#: Free space below which an unexplained write failure is taken for a full disk.
_LOW_FREE_BYTES = 64 << 20


def _low_free_space(where: Path | None) -> bool:
    """Whether the file system holding ``where`` has (almost) no free space left."""
    if where is None:
        return False
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < _LOW_FREE_BYTES
    except OSError:
        return False


def _disk_full_cause(err: BaseException, where: Path | None = None) -> BaseException | None:
    """The innermost exception in ``err``'s chain that reports a full disk or quota.

    Writers that fail without an errno (torch.save) count when the file system holding
    ``where`` is (almost) full, so that such a failure gets the same clear message.
    """
    found = None
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if (
            (isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS)
            or any(t in text for t in _DISK_FULL_TEXTS)
            or (any(t in text for t in _WRITE_FAILED_TEXTS) and _low_free_space(where))
        ):
            found = current
        current = current.__cause__ or current.__context__
    return found


def _disk_full_error(final: Path, cause: BaseException) -> LangarithError:
    """The message of a write that failed because the disk (or the quota) is full."""
    kept = "still holds the previous version" if final.exists() else "was not created"
    text = str(cause).lower()
    quota = (isinstance(cause, OSError) and cause.errno == errno.EDQUOT) or (
        "quota" in text or "os error 122" in text
    )
    what = "Disk quota exceeded" if quota else "No space left on device"
    return LangarithError(
        f"{what} while writing {final} "
        f"({type(cause).__name__}: {cause}). Nothing was replaced: {final} {kept} and the "
        "partial temporary copy was removed. Free space on that file system (or raise "
        "the quota) and rerun."
    )


@contextlib.contextmanager
def discarded_on_failure(tmp: Path | str, final: Path | str) -> Iterator[None]:
    """Remove the temporary ``tmp`` (file or folder) if the block raises, and re-raise.

    A failure caused by a full disk or quota becomes a :class:`~langarith.LangarithError`
    that names ``final`` and says whether it still holds its previous version; any other
    error goes on unchanged. Shared by the atomic writers here and by writers that name
    their own temporary files (training checkpoints).
    """
    tmp, final = Path(tmp), Path(final)
    try:
        yield
    except BaseException as err:
        _remove(tmp)
        cause = _disk_full_cause(err, final.parent)
        if cause is not None:
            raise _disk_full_error(final, cause) from err
        raise


def _temp_sibling(final: Path) -> Path:
    """The temporary name next to ``final``: hidden, and unique per process."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def _remove(path: Path) -> None:
    """Remove a file, a symlink or a whole folder; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(final: Path | str) -> Iterator[Path]:
    """Build a folder under a temporary name and move it to ``final`` on success.

    Yields the temporary sibling ``.<name>.tmp-<pid>`` (created empty). When the block
    ends normally, the temporary folder is renamed into place (an existing ``final`` is
    moved aside first and deleted only afterwards); when it raises, the temporary folder
    is removed and the error goes on, so a failed rule leaves nothing that looks
    finished. A write that fails because the
    disk or the quota is full becomes a :class:`~langarith.LangarithError` naming
    ``final`` (the previous ``final``, if any, is kept).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final)
    _remove(tmp)  # left over by a crashed process that had the same pid
    tmp.mkdir()
    with discarded_on_failure(tmp, final):
        yield tmp
    _swap_into_place(tmp, final)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished folder ``tmp`` to ``final``, replacing an older ``final``.

    The older folder is first renamed aside (not deleted), so that if the second rename
    fails it is put back and ``final`` never ends up missing or half-deleted; it is
    removed only once the new folder is in place.
    """
    if not (final.exists() or final.is_symlink()):
        tmp.rename(final)
        return
    aside = final.with_name(f".{final.name}.old-{os.getpid()}")
    _remove(aside)
    final.rename(aside)
    try:
        tmp.rename(final)
    except BaseException:
        aside.rename(final)
        _remove(tmp)
        raise
    _remove(aside)


@contextlib.contextmanager
def atomic_file(final: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    """Write one file under a temporary name and move it to ``final`` on success.

    Yields the open file (``mode`` ``"w"``/``"wt"`` for UTF-8 text, ``"wb"`` for
    bytes). The data is flushed and synced before the rename, so ``final`` is either
    the old file or the complete new one; on an exception the temporary file is
    removed and the error goes on (a full disk or quota as a
    :class:`~langarith.LangarithError` naming ``final``).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_file mode must be 'w', 'wt' or 'wb', not {mode!r}")
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final)
    _remove(tmp)
    encoding = None if "b" in mode else "utf-8"
    with discarded_on_failure(tmp, final), open(tmp, mode, encoding=encoding) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(tmp, final)


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks so large files cost no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of a JSON-able object in canonical form (sorted keys, no spaces).

    Used for config hashes: the same settings give the same hash whatever order the
    mappings were built in. Values JSON does not know are hashed as their ``str``.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically: indent 2, sorted keys, UTF-8, final newline.

    Sorted keys make the file independent of the order a dict was built in, so two
    runs that compute the same thing write the same bytes (and the same checksum).
    """
    path = Path(path)
    with atomic_file(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    return path


def read_json(path: Path | str, what: str = "JSON file") -> Any:
    """Read a JSON file; a missing or corrupt file raises ``LangarithError``.

    The message names the file, its role (``what``, e.g. ``"Checkpoint state"``) and
    what to do, because the usual cause is an artifact from an interrupted or older run
    rather than a bug.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LangarithError(
            f"{what} {path} does not exist; run the step that makes it first"
        ) from None
    except IsADirectoryError:
        raise LangarithError(f"expected a JSON file at {path}, found a folder") from None
    except UnicodeDecodeError as err:
        raise LangarithError(f"{what} {path} is not UTF-8 text ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise LangarithError(
            f"{what} {path} is corrupt or truncated ({err.msg} at line {err.lineno}, "
            f"column {err.colno}); delete it and rerun the step that makes it"
        ) from None
