"""TensorFlow runtime helpers: import it quietly, find GPUs, size thread pools, pick a device.

Nothing here imports TensorFlow until a function needs it, so ``import vidstream`` stays fast:

>>> resolve_device(use_ei=False, device="cpu")      # asks TensorFlow nothing
('/CPU:0', 'CPU')
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from .errors import ModelError
from .settings import DEVICES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ chatter off stderr

log = logging.getLogger("vidstream")

_warned_no_gpu = False


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Keep native libraries' banners (CUDA probing, TF Lite delegates) off fd 2.

    What they printed is shown after all if the body raises, so real failures stay visible.
    File descriptor 2 belongs to the whole process: redirecting it from a worker thread would
    also swallow the dashboard and every other thread's warnings while the body runs. So only
    the main thread redirects; elsewhere this is a no-op (and loaders do their noisy set-up at
    load time, which runs in the main thread).

    >>> with quiet_stderr():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> Any:
    """TensorFlow, imported with its start-up banner kept off stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_stderr():
        import tensorflow as tf
    return tf


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty on a CPU-only machine)."""
    tf = import_tensorflow()
    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(dev)
            names.append(details.get("device_name", dev.name))
        except Exception:
            names.append(dev.name)
    return names


def configure_threads(intra_op: int | None = None, inter_op: int | None = None) -> bool:
    """Set TensorFlow's thread pools; only possible before its first op (returns success)."""
    tf = import_tensorflow()
    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        return True
    except RuntimeError:
        log.warning("TensorFlow is already initialised; thread settings left unchanged")
        return False


def resolve_device(use_ei: bool, device: str | None) -> tuple[str, str]:
    """``(tf device string, words for people)`` for the requested device.

    ``device`` None means ``auto`` when ``use_ei`` (the write-up's "use an accelerator"), else
    ``cpu``. ``auto`` without a GPU falls back to the CPU: silently, since the CPU path is an
    intended one, unless the caller asked for an accelerator with ``use_ei=True`` (then it
    says so once). ``gpu`` without one is an error.
    """
    global _warned_no_gpu
    want = (device or ("auto" if use_ei else "cpu")).lower()
    if want not in DEVICES:
        raise ModelError(f"unknown device {device!r}; use {', '.join(DEVICES)}", param="device")
    if want == "cpu":
        return "/CPU:0", "CPU"
    gpus = gpu_names()
    if gpus:
        return "/GPU:0", f"GPU ({gpus[0]})"
    if want == "gpu":
        raise ModelError("no GPU is visible to TensorFlow (device gpu was requested)",
                         param="device")
    if use_ei and not _warned_no_gpu:
        log.warning("no GPU is visible to TensorFlow: the model runs on the CPU")
        _warned_no_gpu = True
    return "/CPU:0", "CPU (no GPU found)"
