"""Known models: fetch from a package registry, convert, cache; resolve a model argument.

The default detector ships as a TensorFlow.js graph model inside the npm package
``@vladmandic/human`` (MIT). :func:`pull` runs ``npm pack`` for it, converts it (see
:mod:`vidstream.models.centernet`) and caches it, so the default model then loads through
exactly the path a user's own SavedModel does. Nothing is fetched at run time from a model
hub; the cache can be moved with ``VIDSTREAM_CACHE``.

>>> sorted(REGISTRY)
['centernet']
>>> model_dir("centernet").parts[-2:]
('models', 'centernet')
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelError, ModelNotFoundError, ModelPullError
from ..settings import DEFAULTS
from .centernet import FORMAT_VERSION, convert_centernet
from .metadata import read_metadata
from .spec import ModelSpec

Progress = Callable[[str], None]
# Model references that name a model on a server (vidstream.backends.remote).
REMOTE_SCHEMES = ("triton", "tfserving")

DEFAULT_MODEL = DEFAULTS.model

REGISTRY: dict[str, ModelSpec] = {
    "centernet": ModelSpec(
        name="centernet",
        description="MobileNetV3-CenterNet, COCO 80 classes, 512x512 input",
        package="@vladmandic/human",
        version="3.3.6",
        files=("package/models/centernet.json", "package/models/centernet.bin"),
        licence="MIT",
        input_size=(512, 512),
        input_node="tower_0/images",
        heatmap_node="tower_0/keypoints",
        sizes_node="tower_0/wh",
    )
}


def cache_root() -> Path:
    """``$VIDSTREAM_CACHE``, else ``$XDG_CACHE_HOME/vidstream``, else ``~/.cache/vidstream``."""
    if os.environ.get("VIDSTREAM_CACHE"):
        return Path(os.environ["VIDSTREAM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidstream"


def model_dir(name: str) -> Path:
    """Where ``name`` is (or will be) cached."""
    return cache_root() / "models" / name


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a known model; the error lists the known ones."""
    if name not in REGISTRY:
        raise ModelNotFoundError(
            f"unknown model {name!r}; known: {', '.join(REGISTRY)} "
            "(or pass a path to a SavedModel directory or a frozen graph .pb)",
            param="model",
        )
    return REGISTRY[name]


def is_cached(name: str) -> bool:
    """True when ``name`` is converted in the cache in the current layout.

    A cached copy whose metadata is damaged counts as missing: pulling it again repairs it.
    """
    d = model_dir(name)
    if not (d / "saved_model.pb").is_file():
        return False
    try:
        meta = read_metadata(d)
    except ModelError:
        return False
    return meta.get("format_version") == FORMAT_VERSION


def path(name: str) -> Path:
    """The cached SavedModel directory of ``name`` (raises if not pulled yet)."""
    spec(name)
    if not is_cached(name):
        raise ModelNotFoundError(
            f"model {name!r} is not in the cache ({model_dir(name)}); pull it first "
            f"(models.pull({name!r}))"
        )
    return model_dir(name)


def resolve(model: str | None, *, pull_missing: bool = True, progress: Progress | None = None
            ) -> Path | str:
    """A model argument (known name or path) as a loadable path; pulls a missing known model.

    A remote model's URI (``triton://HOST:PORT/NAME``, ``tfserving://...``) is a model too: it
    comes back unchanged, as a string, for the backend registry to connect to.
    """
    model = model or DEFAULT_MODEL
    if model.split("://", 1)[0] in REMOTE_SCHEMES and "://" in model:
        return model
    if model in REGISTRY:
        if not is_cached(model):
            if not pull_missing:
                return path(model)
            pull(model, progress=progress)
        return model_dir(model)
    p = Path(model).expanduser()
    if not p.exists():
        raise ModelNotFoundError(
            f"{model}: no such model file or directory (known models: {', '.join(REGISTRY)})",
            param="model",
        )
    return p


def list_models() -> list[dict[str, Any]]:
    """One row per known model: name, description, source, whether cached, cache path."""
    rows = []
    for s in REGISTRY.values():
        rows.append(
            {
                "name": s.name,
                "description": s.description,
                "source": f"npm {s.package}@{s.version} ({s.licence})",
                "cached": is_cached(s.name),
                "path": str(model_dir(s.name)),
            }
        )
    return rows


# -- pull ----------------------------------------------------------------------------------
def pull(name: str, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Fetch ``name`` with ``npm pack``, convert it and cache it; returns the SavedModel dir."""
    s = spec(name)
    say = progress or (lambda _msg: None)
    target = model_dir(name)
    if is_cached(name) and not force:
        say(f"{name}: already cached at {target}")
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ModelPullError(
            f"cannot fetch model {name!r}: npm was not found. Install Node.js/npm, or use "
            "a TF2 SavedModel directory or a TF1 frozen graph .pb as the model",
            param="model",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        say(f"{name}: downloading {s.package}@{s.version} with npm pack")
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                [npm, "pack", f"{s.package}@{s.version}", "--pack-destination", str(work),
                 "--silent"],
                cwd=work, capture_output=True, text=True, timeout=600, check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ModelPullError(f"npm pack {s.package}@{s.version} timed out") from e
        tarballs = list(work.glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise ModelPullError(
                f"npm pack {s.package}@{s.version} failed: "
                f"{detail[-1] if detail else f'exit code {done.returncode}'}"
            )
        size_mb = tarballs[0].stat().st_size / 1e6
        say(f"{name}: downloaded {size_mb:.1f} MB in {time.perf_counter() - t0:.1f} s")
        files = _extract(tarballs[0], s.files, work / "tfjs")
        say(f"{name}: converting the TF.js graph to a SavedModel")
        t1 = time.perf_counter()
        staged = work / "saved_model"
        convert_centernet(files[0], staged, s)
        say(f"{name}: converted in {time.perf_counter() - t1:.1f} s")
        if not _publish(name, staged, work, replace=force):
            say(f"{name}: another pull cached it meanwhile; keeping that copy")
    say(f"{name}: cached at {target}")
    return target


def _publish(name: str, staged: Path, work: Path, *, replace: bool) -> bool:
    """Move the finished ``staged`` directory to ``name``'s cache directory with one rename.

    A reader (or another pull) looking at the cache sees a whole model or none: the new copy
    appears with one ``rename``, and an old one is first renamed out of the way into ``work``
    (deleted with it), never deleted in place: ``rmtree`` on the live directory showed a
    concurrent reader a half-removed model (3 of its 6 entries). Between those two renames
    there is briefly no model at all, which a reader takes as "not pulled", never as a model.
    When a concurrent pull published a complete copy first, that copy is kept unless
    ``replace`` (``--force``) asks for ours; returns whether ours was published.
    """
    target = model_dir(name)
    for _ in range(10):  # each retry means another pull moved target in between
        try:
            os.rename(staged, target)  # fails when target exists (and is not empty)
            return True
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise
        if not replace and is_cached(name):
            return False
        try:
            os.rename(target, work / f"replaced-{time.monotonic_ns()}")
        except FileNotFoundError:
            pass  # another pull moved it first: try again
    raise ModelPullError(f"could not publish the model at {target}: other pulls kept "
                         "replacing it")


def _extract(tarball: Path, members: tuple[str, ...], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tarfile.open(tarball, "r:gz") as tar:
        for member in members:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise ModelPullError(f"{tarball.name} has no {member}") from None
            fh = tar.extractfile(info)
            if fh is None:
                raise ModelPullError(f"{tarball.name}: {member} is not a file")
            p = dest / Path(member).name  # flat: never trust paths inside an archive
            p.write_bytes(fh.read())
            out.append(p)
    return out
