"""Atomic writes, checksums and JSON helpers shared by every stage.

Snakemake decides that a rule has finished by looking at its outputs. A rule that dies
halfway must therefore never leave an output behind that looks complete, or the next
run would build on a truncated file. Every artifact is written into a temporary sibling
(same folder, so the final ``rename`` stays on one file system and is atomic) and moved
into place only once it has been written completely.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from langarith import LangarithError

__all__ = [
    "OutputKind",
    "atomic_dir",
    "atomic_file",
    "check_replaceable",
    "default_file_mode",
    "discarded_on_failure",
    "apply_default_modes",
    "read_json",
    "sha256_file",
    "sha256_json",
    "write_csv_records",
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


# --- the replace rule ------------------------------------------------------------------


def _any_name(name: str) -> bool:
    """Every file name is allowed (the default of :class:`OutputKind`)."""
    return True


@dataclass(frozen=True)
class OutputKind:
    """One kind of output and how an earlier output of that kind is recognised.

    An output may replace only a missing path or an earlier output of the same kind
    (:func:`check_replaceable`). A folder output is recognised by its ``record`` file
    (``metadata.json``, ``manifest.json``, ``state.json``), a JSON object whose ``kind``
    entry is one of ``record_kinds`` (any, when empty), and by holding nothing but
    files whose names ``allowed`` accepts: a folder with anything else in it is never
    replaced. A file output is recognised by its first line (``header``).
    """

    label: str
    is_dir: bool = True
    record: str | None = None
    record_kinds: tuple[str, ...] = ()
    allowed: Callable[[str], bool] = _any_name
    header: str | None = None


#: The marker Snakemake leaves in every ``directory()`` output it wrote: part of any
#: output kind's folder when the workflow made it.
SNAKEMAKE_TIMESTAMP = ".snakemake_timestamp"

#: What the atomic writers assume without a kind: a folder replaces only an empty
#: folder, a file replaces any file (never a folder).
_ANY_FOLDER = OutputKind("folder")
_ANY_FILE = OutputKind("file", is_dir=False)


def _refusal(final: Path, why: str) -> LangarithError:
    """The one line of a refused output: the path, why, and what to do."""
    return LangarithError(
        f"Refusing to write {final}: {why}. Nothing was changed; choose a new path or "
        "move that one away first."
    )


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def _check_parent(final: Path) -> None:
    """A missing output can be created: its nearest existing parent is a writable folder."""
    probe = final.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise _refusal(final, f"{probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _refusal(final, f"the folder {probe} is not writable (read-only or not yours)")


def _folder_problem(final: Path, kind: OutputKind) -> str | None:
    """Why the existing folder ``final`` is not an earlier output of ``kind`` (None: it is)."""
    entries = sorted(final.iterdir())
    if not entries:
        return None
    if kind.record is None:
        return "it is a folder that is not empty"
    record = final / kind.record
    try:
        content = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        content = None
    if not isinstance(content, dict):
        return f"it is not an earlier {kind.label} (no readable {kind.record} in it)"
    if kind.record_kinds and content.get("kind") not in kind.record_kinds:
        return (
            f"it is not an earlier {kind.label} ({kind.record} says kind "
            f"{content.get('kind')!r}, expected one of {list(kind.record_kinds)})"
        )
    foreign = [
        p.name
        for p in entries
        if p.name != SNAKEMAKE_TIMESTAMP and (not p.is_file() or not kind.allowed(p.name))
    ]
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        return f"it holds files the workflow did not write ({shown})"
    return None


def _file_problem(final: Path, kind: OutputKind) -> str | None:
    """Why the existing file ``final`` is not an earlier output of ``kind`` (None: it is)."""
    if kind.header is None:
        return None
    try:
        with open(final, "rb") as handle:
            first = handle.readline(len(kind.header.encode("utf-8")) + 2)
    except OSError as err:
        return f"it cannot be read ({err.strerror})"
    if first.decode("utf-8", errors="replace").rstrip("\r\n") != kind.header:
        return f"it is not an earlier {kind.label} (its first line is not the table header)"
    return None


def check_replaceable(
    final: Path | str, kind: OutputKind | None = None, protect: Iterable[Path | str] = ()
) -> None:
    """Refuse, with one line naming ``final`` and why, an output that would destroy data.

    The rule for every command and rule: an output may replace only a missing path or
    an earlier output of the same ``kind`` (see :class:`OutputKind`; without a kind,
    only an empty folder or, for files, a file), never the current folder or one that
    contains it, never one of the paths in ``protect`` (the command's inputs) or a
    folder that contains one, and never a symbolic link. A missing path needs a
    writable parent. Called by :func:`atomic_dir` and :func:`atomic_file` right before
    the swap, and by long commands once more at their start, so that a refusal comes
    before hours of work.
    """
    final = Path(final)
    target = Path(os.path.abspath(final))
    here = Path.cwd().resolve()
    if final.is_symlink():
        raise _refusal(final, "it is a symbolic link")
    resolved = target.resolve()
    if _inside(here, resolved):
        raise _refusal(final, "it is the current folder or contains it")
    for item in protect:
        source = Path(os.path.abspath(item)).resolve()
        if source == resolved:
            raise _refusal(final, f"it is an input of this command ({item})")
        if _inside(source, resolved):
            raise _refusal(final, f"it contains an input of this command ({item})")
    if not final.exists():
        _check_parent(target)
        return
    is_dir = kind.is_dir if kind is not None else final.is_dir()
    if final.is_dir() != is_dir:
        found, wanted = ("a folder", "a file") if final.is_dir() else ("a file", "a folder")
        raise _refusal(final, f"it is {found}, and this output is {wanted}")
    if kind is None:
        problem = "it is a folder that is not empty" if is_dir and any(final.iterdir()) else None
    else:
        problem = _folder_problem(final, kind) if is_dir else _file_problem(final, kind)
    if problem is not None:
        raise _refusal(final, problem)


# --- file modes ------------------------------------------------------------------------


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # portable fallback: read by setting, then restore at once
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a plain ``open(..., "w")`` gives a new file: ``0o666`` minus the umask."""
    return 0o666 & ~_umask()


def apply_default_modes(path: Path | str) -> None:
    """Give ``path`` (and, for a folder, everything in it) the umask's default mode.

    Some writers create files with mode 0600 (safetensors' ``save_file``, temporary
    files), which a group on a shared cluster cannot read; outputs should look as if
    written with ``open``.
    """
    path = Path(path)
    mask = _umask()
    items = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in items:
        if item.is_symlink():
            continue
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)


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


def _make_parent(final: Path) -> None:
    """Create the folder that will hold ``final``; failing that, one clear line."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LangarithError(
            f"Cannot create the folder {final.parent} for {final}: {err.strerror or err}; "
            "check that the path is mounted and writable"
        ) from None


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
def atomic_dir(
    final: Path | str, kind: OutputKind | None = None, protect: Iterable[Path | str] = ()
) -> Iterator[Path]:
    """Build a folder under a temporary name and move it to ``final`` on success.

    Yields the temporary sibling ``.<name>.tmp-<pid>`` (created empty). When the block
    ends normally, the files get the umask's default mode and the temporary folder is
    renamed into place (an existing ``final`` is moved aside first and deleted only
    afterwards); when it raises, the temporary folder is removed and the error goes on,
    so a failed rule leaves nothing that looks finished. A write that fails because the
    disk or the quota is full becomes a :class:`~langarith.LangarithError` naming
    ``final`` (the previous ``final``, if any, is kept).

    ``final`` must pass :func:`check_replaceable` with ``kind`` and ``protect``, both
    before the block and again right before the swap.
    """
    final, kind = Path(final), kind or _ANY_FOLDER
    check_replaceable(final, kind, protect)
    _make_parent(final)
    tmp = _temp_sibling(final)
    _remove(tmp)  # left over by a crashed process that had the same pid
    tmp.mkdir()
    with discarded_on_failure(tmp, final):
        yield tmp
        apply_default_modes(tmp)
        check_replaceable(final, kind, protect)
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
def atomic_file(
    final: Path | str,
    mode: str = "w",
    kind: OutputKind | None = None,
    protect: Iterable[Path | str] = (),
) -> Iterator[IO[Any]]:
    """Write one file under a temporary name and move it to ``final`` on success.

    Yields the open file (``mode`` ``"w"``/``"wt"`` for UTF-8 text, ``"wb"`` for
    bytes). The data is flushed and synced before the rename, so ``final`` is either
    the old file or the complete new one; on an exception the temporary file is
    removed and the error goes on (a full disk or quota as a
    :class:`~langarith.LangarithError` naming ``final``). ``final`` must pass
    :func:`check_replaceable` (a folder is never replaced by a file).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_file mode must be 'w', 'wt' or 'wb', not {mode!r}")
    final, kind = Path(final), kind or _ANY_FILE
    check_replaceable(final, kind, protect)
    _make_parent(final)
    tmp = _temp_sibling(final)
    _remove(tmp)
    encoding = None if "b" in mode else "utf-8"
    with discarded_on_failure(tmp, final):
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        apply_default_modes(tmp)
        check_replaceable(final, kind, protect)
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


def write_csv_records(
    path: Path | str,
    columns: Sequence[str],
    records: Iterable[Mapping[str, Any]],
    kind: OutputKind | None = None,
) -> Path:
    """Write records as CSV with header ``columns`` atomically (``\\n`` line ends).

    The one writer of the package's CSV outputs (score, label-free, sparsity, t-test
    files); ``kind`` lets an earlier file of that kind be replaced (see
    :func:`atomic_file`).
    """
    path = Path(path)
    with atomic_file(path, "w", kind) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return path


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
