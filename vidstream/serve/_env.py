"""The serve environment: a virtual environment of its own for the Triton server.

``nvidia-pytriton`` ships the real ``tritonserver`` binary with its Python backend, but it
requires numpy < 2, which vidstream's own environment does not have. So the server runs in a
second virtual environment under the vidstream cache (``$VIDSTREAM_CACHE/serve-env``), with
pinned versions that were checked to install together (:data:`REQUIREMENTS`).

It is created on first use (``vidstream serve`` and the test fixture both come here), built in
a temporary directory beside its final place and renamed into place only once pip succeeded,
so a run that dies half-way leaves nothing that looks complete. A complete environment holds
:data:`MARKER` with the requirements it was built from; a different list builds it again.

>>> env_dir().name
'serve-env'
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import VidstreamError
from ..models.registry import cache_root

#: What the server's environment holds: PyTriton (with tritonserver 2.51 and its Python
#: backend), TensorFlow to run the model, and the numpy both accept.
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "tensorflow==2.21.0", "numpy==1.26.4")
MARKER = "vidstream-serve-env.json"
# Bumped when what the server script needs from the environment changes.
ENV_VERSION = 1

Progress = Callable[[str], None]


class ServeEnvError(VidstreamError, RuntimeError):
    """The serve environment could not be created (pip failed, no venv module...)."""


@dataclass(frozen=True)
class ServeEnv:
    """A complete serve environment: its ``python`` and the ``LD_LIBRARY_PATH`` entry (the
    Python's ``LIBDIR``) that Triton's Python backend stub needs to find the same
    ``libpython``: without it the stub loads the system's and dies with ``'_thread.RLock'
    object has no attribute '_recursion_count'``."""

    path: Path
    python: Path
    libdir: str
    build_s: float

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment variables to run the server process with."""
        env = dict(os.environ if base is None else base)
        parts = [self.libdir, *filter(None, env.get("LD_LIBRARY_PATH", "").split(":"))]
        env["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(parts))
        env.pop("PYTHONPATH", None)  # the server imports nothing of vidstream's environment
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return env


def env_dir() -> Path:
    """Where the serve environment lives: ``<vidstream cache>/serve-env``."""
    return cache_root() / "serve-env"


def _bin(path: Path) -> Path:
    return path / ("Scripts" if os.name == "nt" else "bin") / "python"


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("requirements") != list(REQUIREMENTS) or data.get("version") != ENV_VERSION:
        return None
    if not _bin(path).exists():
        return None
    return data


def find_env(path: Path | None = None) -> ServeEnv | None:
    """The complete serve environment at ``path`` (default :func:`env_dir`), or None."""
    path = path or env_dir()
    data = _read_marker(path)
    if data is None:
        return None
    return ServeEnv(path, _bin(path), str(data.get("libdir", "")),
                    float(data.get("build_s", 0.0)))  # type: ignore[arg-type]


def ensure_env(progress: Progress | None = None, *, path: Path | None = None,
               python: str | None = None) -> ServeEnv:
    """The serve environment, created first when missing or incomplete (several minutes:
    pip installs TensorFlow and PyTriton; ``progress`` gets one line per step)."""
    say = progress or (lambda _msg: None)
    path = path or env_dir()
    found = find_env(path)
    if found is not None:
        return found
    python = python or sys.executable
    path.parent.mkdir(parents=True, exist_ok=True)
    say(f"serve: creating the Triton server's environment in {path} (once; several minutes)")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the environment is not a secret
    try:
        _run([python, "-m", "venv", str(tmp)], "python -m venv", say)
        py = str(_bin(tmp))
        _run([py, "-m", "pip", "install", "--upgrade", "pip"], "pip install --upgrade pip",
             say, quiet=True)
        say(f"serve: pip install {' '.join(REQUIREMENTS)}")
        _run([py, "-m", "pip", "install", "--progress-bar", "off", *REQUIREMENTS],
             "pip install", say)
        libdir = subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')"],
            capture_output=True, text=True, check=True).stdout.strip()
        build_s = time.perf_counter() - t0
        (tmp / MARKER).write_text(json.dumps({
            "version": ENV_VERSION, "requirements": list(REQUIREMENTS), "libdir": libdir,
            "build_s": round(build_s, 1), "python": sys.version.split()[0],
        }, indent=2) + "\n")
        if path.exists():  # an incomplete or outdated one
            shutil.rmtree(path)
        os.replace(tmp, path)  # atomic: another process sees all of it or none
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"serve: environment ready in {build_s:.0f} s")
    env = find_env(path)
    if env is None:  # pragma: no cover - we just wrote it
        raise ServeEnvError(f"{path}: the new serve environment is incomplete")
    return env


def _run(cmd: list[str], what: str, say: Progress, quiet: bool = False) -> None:
    """Run ``cmd``, passing pip's step lines (``Collecting``, ``Installing``...) to ``say``;
    a failure raises with the last lines of its output."""
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-19:], line]
            if not quiet and line.startswith(("Collecting", "Installing", "Successfully")):
                say(f"serve: {line[:160]}")
        code = proc.wait()
    if code != 0:
        raise ServeEnvError(f"{what} failed (exit code {code}):\n" + "\n".join(tail[-8:]))
