"""Outputs: refused before any work when they cannot be written, never the input, and
written whole or not at all.

>>> check_output("new.mp4", overwrite=False).name
'new.mp4'
>>> check_output("/", overwrite=True)
Traceback (most recent call last):
...
vidstream.errors.OutputError: /: is a directory

Small outputs (a summary, counts) are written to a temporary name beside the target and
renamed over it, so a reader sees the old file or the new one, whole, never a mixture and
never a half-written file (a full disk leaves the target absent or unchanged):

>>> write_atomic("counts.json", '{"frames": 12}\\n')
>>> open("counts.json").read()
'{"frames": 12}\\n'

:class:`OutputFile` does the same for a file written over a whole run (the video, the
detections): the run writes :attr:`OutputFile.temp`, and :meth:`OutputFile.commit` renames it
into place at the end. Without ``overwrite`` the target is locked for the run, so a second run
aiming at it is refused at once, and the rename never replaces a file. A *streaming* output
(``in_place=True``: fragmented MP4, the detections of a live run) must be readable while it is
written and after a kill, so it is written at its own name, and locked for the whole run
whatever ``overwrite`` says: two runs never write into the same file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import OutputError

try:  # POSIX; elsewhere outputs are still atomic, only not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PathLike = str | os.PathLike[str]


def check_output(path: PathLike, overwrite: bool, *, param: str | None = None) -> Path:
    """Refuse, before any work, an output that exists (without ``overwrite``), that another
    run is writing, or that can't be written; returns the path."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{p}: is a directory", param=param)
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: already exists", param="overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{p}: directory {parent} does not exist", param=param)
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"{p}: permission denied", param=param)
    probe_writable(p)
    with OutputLock(p):  # held by another run: refused now rather than after the model loads
        pass
    return p


def probe_writable(p: Path) -> None:
    """Create (and remove) a file beside ``p``, or open ``p`` for appending: the only check
    that does not lie.

    ``os.access`` says yes to root everywhere, and to anyone on a read-only mount or in /proc.
    """
    try:
        if p.exists():
            with p.open("ab"):
                pass
        else:
            probe = _temp_name(p)
            with probe.open("xb"):
                pass
            probe.unlink()
    except OSError as e:
        raise OutputError(f"{p}: cannot write: {e.strerror or e}") from None


# -- identity: an output is never an input, nor another output -----------------------------------
def check_outputs(outputs: Mapping[str, PathLike] | Iterable[tuple[str, PathLike]],
                  inputs: Iterable[PathLike], overwrite: bool) -> None:
    """Every check of a run's outputs before any work: none is an input or another output
    (:func:`check_distinct`), and each can be written (:func:`check_output`). ``outputs``
    maps, or pairs, the parameter naming each output with its path (a run over several inputs
    has several of each)."""
    pairs = list(outputs.items() if isinstance(outputs, Mapping) else outputs)
    check_distinct(pairs, inputs)
    for param, path in pairs:
        check_output(path, overwrite, param=param)


def check_distinct(outputs: Mapping[str, PathLike] | Iterable[tuple[str, PathLike]],
                   inputs: Iterable[PathLike] = ()) -> None:
    """Refuse outputs that are an input, or each other, by another path.

    ``outputs`` maps the parameter that names each output (``"video"``, ``"summary"``...) to
    its path. Files are compared by identity (device and inode), so a symbolic or hard link to
    the input, ``./clip.mp4`` against ``clip.mp4``, or ``a/../b.json`` against ``b.json``, are
    all the same file. Inputs that are not local files (URLs, cameras) are skipped.

    >>> os.symlink("clip.mp4", "link.mp4")
    >>> check_distinct({"video": "link.mp4"}, ["clip.mp4"])
    Traceback (most recent call last):
    ...
    vidstream.errors.OutputError: link.mp4: is the input clip.mp4 by another path; ... (see video)
    >>> os.remove("link.mp4")
    """
    files = [Path(i) for i in inputs if _is_local_file(i)]
    seen: list[tuple[str, Path]] = []
    for param, out in (outputs.items() if isinstance(outputs, Mapping) else outputs):
        p = Path(out)
        for src in files:
            if same_file(p, src):
                raise OutputError(
                    f"{p}: is the input {src} by another path; writing it would destroy the "
                    "input", param=param)
        for other_param, other in seen:
            if same_file(p, other):
                raise OutputError(f"{p}: is also the {other_param} output ({other}); each "
                                  "output needs its own file", param=param)
        seen.append((param, p))


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: the same inode when both exist (links included),
    else the same name in the same directory (which may not exist yet)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    ka, kb = _place(a), _place(b)
    return ka is not None and ka == kb


def _place(p: Path) -> tuple[int, int, str] | None:
    """(device, inode of the directory, name): a file's identity before it exists."""
    try:
        st = os.stat(p.parent if str(p.parent) else ".")
    except OSError:
        return None
    return st.st_dev, st.st_ino, p.name


def _is_local_file(uri: PathLike) -> bool:
    text = os.fspath(uri)
    return "://" not in text and not text.startswith("/dev/video") and Path(text).is_file()


# -- whole or absent ----------------------------------------------------------------------------
def write_atomic(path: PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` whole, or leave ``path`` as it was (absent or the old file).

    Raises :class:`~vidstream.errors.OutputError` (a full disk, a refusal); nothing partial
    is left behind, not even the temporary file.
    """
    out = OutputFile(path, overwrite=overwrite)
    try:
        out.write_text(text)
    finally:
        out.release()


class OutputLock:
    """An exclusive, non-blocking lock on an output, held by one run at a time.

    It is an advisory ``flock`` on a hidden file beside the output (``.NAME.lock``), released
    by the kernel when the process dies, so a killed run never leaves a stale lock.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._fh: IO[bytes] | None = None

    def acquire(self) -> OutputLock:
        if fcntl is None or self._fh is not None:
            return self
        while True:
            try:
                fh = open(self.lock_path, "ab")  # noqa: SIM115 - held until release()
            except OSError:
                return self  # a directory we may write files in but not this one: no lock
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                fh.close()
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(
                        f"{self.path}: another run is writing it right now") from None
                return self  # locks not supported on this filesystem
            # The holder before us may have removed the lock file after we opened it: then
            # we hold a lock on a file nobody else can see; take the one at the path.
            try:
                if os.stat(self.lock_path).st_ino == os.fstat(fh.fileno()).st_ino:
                    self._fh = fh
                    return self
            except FileNotFoundError:
                pass
            fh.close()

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                self.lock_path.unlink()
            fh.close()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class OutputFile:
    """One output of a run, written at :attr:`temp` and put in place by :meth:`commit`.

    ``overwrite=False``: the target is locked from :meth:`begin` to the end, and the commit
    never replaces a file (another run's output that appeared meanwhile is left alone, and
    this one's is kept at :attr:`temp`, which the error names). ``in_place=True``: written
    at the target itself (readable while it grows), locked for the whole run.
    """

    def __init__(self, path: PathLike, *, overwrite: bool = True, in_place: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.in_place = in_place
        self.temp = self.path if in_place else _temp_name(self.path)
        self._lock = OutputLock(self.path)
        self.committed = False

    def begin(self) -> Path:
        """Lock when needed and say where to write (the target itself, or the temporary name)."""
        if self.in_place or not self.overwrite:
            self._lock.acquire()
        if not self.overwrite and self.path.exists():
            self._lock.release()
            raise OutputError(f"{self.path}: already exists", param="overwrite")
        return self.temp

    def write_text(self, text: str) -> None:
        """Write ``text`` whole and commit it; on failure nothing is left behind."""
        self.begin()
        try:
            with open(self.temp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            self.discard()
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from e
        self.commit()

    def commit(self) -> None:
        """Put the finished file in place (atomically) and release the lock."""
        try:
            if self.in_place:
                return
            _fsync(self.temp)
            if self.overwrite:
                os.replace(self.temp, self.path)
            else:
                self._link_no_clobber()
            self.committed = True
        except OSError as e:
            self.discard()
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from e
        finally:
            self._lock.release()

    def discard(self) -> None:
        """Remove what was written (the temporary file; in place: the file) and unlock."""
        with contextlib.suppress(OSError):
            self.temp.unlink()
        self._lock.release()

    def release(self) -> None:
        """Unlock without committing (after :meth:`commit` or :meth:`discard`, a no-op)."""
        if not self.committed and not self.in_place:
            with contextlib.suppress(OSError):
                self.temp.unlink()
        self._lock.release()

    def _link_no_clobber(self) -> None:
        try:
            os.link(self.temp, self.path)  # fails if the target exists: never replaces it
        except FileExistsError:
            raise OutputError(
                f"{self.path}: another run wrote it meanwhile; this run's output is kept at "
                f"{self.temp}", param="overwrite") from None
        except OSError:
            # no hard links here (some network and FAT filesystems): the lock must do
            if self.path.exists():
                raise OutputError(
                    f"{self.path}: another run wrote it meanwhile; this run's output is kept "
                    f"at {self.temp}", param="overwrite") from None
            os.replace(self.temp, self.path)
            return
        self.temp.unlink()


def _temp_name(p: Path) -> Path:
    """A hidden name beside ``p`` with its extension (FFmpeg picks the format by it)."""
    return p.with_name(f".{p.stem}.vidstream-{secrets.token_hex(4)}{p.suffix}")


def stale_temps(path: PathLike) -> list[Path]:
    """The temporary files of ``path`` that runs left behind (a killed run never renames or
    removes its own): hidden names beside it made by :func:`_temp_name`, and nothing else.

    >>> open(".out.vidstream-0123abcd.mp4", "w").close()
    >>> [p.name for p in stale_temps("out.mp4")], stale_temps("out.mkv")
    (['.out.vidstream-0123abcd.mp4'], [])
    >>> os.remove(".out.vidstream-0123abcd.mp4")
    """
    p = Path(path)
    pattern = re.compile(rf"\.{re.escape(p.stem)}\.vidstream-[0-9a-f]{{8}}{re.escape(p.suffix)}")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        return sorted(q for q in parent.iterdir() if pattern.fullmatch(q.name) and q.is_file())
    except OSError:  # no such directory (yet): nothing left there
        return []


def _fsync(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_output(path: Path, *, finalized: bool, error: str | None, **counts: Any
                    ) -> dict[str, Any]:
    """An output's state for the run summary: where, whether it is whole and in place, how
    much it holds, and the first failure to write it (None: none)."""
    return {"path": str(path), "finalized": finalized, **counts, "error": error}
