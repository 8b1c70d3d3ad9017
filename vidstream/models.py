"""Known models: fetch from a registry package, convert to a SavedModel, cache, export.

The default detector, MobileNetV3-CenterNet trained on COCO (80 classes), ships as a
TensorFlow.js graph model inside the npm package ``@vladmandic/human`` (MIT). ``pull`` runs
``npm pack`` for it, converts the graph to a TF2 SavedModel with the Object Detection API
signature (uint8 ``input_tensor`` of any size in; ``detection_boxes`` normalised
``ymin, xmin, ymax, xmax``, ``detection_scores``, ``detection_classes`` as 1-based COCO label-map
ids, ``num_detections`` out) and caches it, so the default model loads through exactly the
path a user's own SavedModel does::

    path = models.pull("centernet")          # ~/.cache/vidstream/models/centernet
    EIPredictor(path)({"input_tensor": frames})

Nothing is fetched at run time from a model hub; the cache can be moved with
``VIDSTREAM_CACHE``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError, ModelNotFoundError, ModelPullError, OutputError
from .labels import COCO80_TO_COCO90
from .predictor import METADATA_FILE, import_tensorflow

Progress = Callable[[str], None]

DEFAULT_MODEL = "centernet"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    package: str
    version: str
    files: tuple[str, ...]  # inside the package tarball; the first is model.json
    licence: str
    input_size: tuple[int, int]
    input_node: str
    heatmap_node: str
    sizes_node: str
    num_classes: int = 80
    stride: int = 4  # input pixels per heatmap cell
    max_detections: int = 100


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
    return cache_root() / "models" / name


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ModelNotFoundError(
            f"unknown model {name!r}; known: {', '.join(REGISTRY)} "
            "(or pass a path to a SavedModel directory or a frozen graph .pb)"
        )
    return REGISTRY[name]


def is_cached(name: str) -> bool:
    """True when ``name`` is converted in the cache in the current layout."""
    d = model_dir(name)
    if not (d / "saved_model.pb").is_file():
        return False
    try:
        meta = json.loads((d / METADATA_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("format_version") == FORMAT_VERSION


def path(name: str) -> Path:
    """The cached SavedModel directory of ``name`` (raises if not pulled yet)."""
    spec(name)
    if not is_cached(name):
        raise ModelNotFoundError(
            f"model {name!r} is not in the cache ({model_dir(name)}); "
            f"run: vidstream models pull {name}"
        )
    return model_dir(name)


def resolve(model: str | None, *, pull_missing: bool = True, progress: Progress | None = None
            ) -> Path:
    """A model argument (known name or path) as a loadable path; pulls a missing known model."""
    model = model or DEFAULT_MODEL
    if model in REGISTRY:
        if not is_cached(model):
            if not pull_missing:
                return path(model)
            pull(model, progress=progress)
        return model_dir(model)
    p = Path(model).expanduser()
    if not p.exists():
        raise ModelNotFoundError(
            f"{model}: no such model file or directory (known models: {', '.join(REGISTRY)})"
        )
    return p


def list_models() -> list[dict[str, Any]]:
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
            f"cannot fetch model {name!r}: npm was not found. Install Node.js/npm, or point "
            "--model at a TF2 SavedModel directory or a TF1 frozen graph .pb"
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
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)  # atomic: a concurrent reader sees all of it or nothing
    say(f"{name}: cached at {target}")
    return target


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


# -- conversion ----------------------------------------------------------------------------
FORMAT_VERSION = 2  # bump when the converted layout changes: older caches are pulled again
TFLITE_FILE = "centernet.tflite"


def centernet_peaks(graph_def: Any, s: ModelSpec) -> Any:
    """``f(x) -> (scores, indices, ltrb)``: the network and CenterNet's peak picking.

    ``x`` is float32 ``[B, H, W, 3]`` at the model's input size (RGB 0-255, letterboxed). Only
    the network up to its two heads is kept from the packaged graph, whose own decoding has
    batch 1 baked into reshapes; peaks are picked here for any batch. The same function feeds
    the SavedModel and the TF Lite model, so both see identical peaks.
    """
    tf = import_tensorflow()

    for node in graph_def.node:  # free the batch dimension of the input
        if node.name == s.input_node and node.op == "Placeholder":
            node.attr["shape"].shape.dim[0].size = -1
    width, height = s.input_size

    def peaks(x: Any) -> tuple[Any, Any, Any]:
        heat, sizes = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={s.input_node + ":0": x},
            return_elements=[s.heatmap_node + ":0", s.sizes_node + ":0"],
            name="centernet",
        )
        batch = tf.shape(heat)[0]
        cells = (height // s.stride) * (width // s.stride)
        # a class peak is a heatmap maximum in its 3x3 neighbourhood
        heat = heat * tf.cast(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), tf.float32)
        scores, idx = tf.math.top_k(tf.reshape(heat, (batch, -1)), s.max_detections)
        ltrb = tf.gather(tf.reshape(sizes, (batch, cells, 4)), idx // s.num_classes, batch_dims=1)
        return scores, idx, ltrb

    return peaks


def build_centernet(graph_def: Any, s: ModelSpec) -> Any:
    """A ``tf.Module``: the Object Detection API signature around the CenterNet network."""
    tf = import_tensorflow()

    peaks = centernet_peaks(graph_def, s)
    width, height = s.input_size
    grid_w = width // s.stride
    class_ids = tf.constant(COCO80_TO_COCO90, tf.float32)

    def detect(images: Any) -> dict[str, Any]:
        # Letterbox: scale to fit the model's square input and pad, so objects keep their
        # aspect ratio (squashing 16:9 into a square cost a person half its score here).
        shape = tf.shape(images)
        ih, iw = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        scale = tf.minimum(height / ih, width / iw)
        nh = tf.cast(tf.round(ih * scale), tf.int32)
        nw = tf.cast(tf.round(iw * scale), tf.int32)
        top, left = (height - nh) // 2, (width - nw) // 2
        x = tf.image.resize(tf.cast(images, tf.float32), tf.stack([nh, nw]), method="bilinear")
        x = tf.pad(x, [[0, 0], [top, height - nh - top], [left, width - nw - left], [0, 0]])
        scores, idx, ltrb = peaks(tf.ensure_shape(x, [None, height, width, 3]))
        cls = idx % s.num_classes
        cell = idx // s.num_classes
        ys = tf.cast(cell // grid_w * s.stride - top, tf.float32)
        xs = tf.cast(cell % grid_w * s.stride - left, tf.float32)
        nh_f, nw_f = tf.cast(nh, tf.float32), tf.cast(nw, tf.float32)
        # boxes in pixels of the padded input -> normalised to the original image
        boxes = tf.stack(
            [
                (ys - ltrb[..., 1]) / nh_f,
                (xs - ltrb[..., 0]) / nw_f,
                (ys + ltrb[..., 3]) / nh_f,
                (xs + ltrb[..., 2]) / nw_f,
            ],
            axis=-1,
        )
        # Per-class NMS: CenterNet can place two peaks on one object.
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :],
            tf.one_hot(cls, s.num_classes) * scores[..., None],
            max_output_size_per_class=s.max_detections,
            max_total_size=s.max_detections,
            iou_threshold=NMS_IOU,
            score_threshold=MIN_SCORE,
            clip_boxes=True,
        )
        return {
            "detection_boxes": nms.nmsed_boxes,
            "detection_scores": nms.nmsed_scores,
            "detection_classes": tf.gather(class_ids, tf.cast(nms.nmsed_classes, tf.int32)),
            "num_detections": tf.cast(nms.valid_detections, tf.float32),
        }

    class CenterNet(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")]
        )
        def __call__(self, input_tensor: Any) -> dict[str, Any]:
            return detect(input_tensor)

        @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
        def peaks(self, x: Any) -> tuple[Any, Any, Any]:
            return peaks(x)

    return CenterNet()


NMS_IOU = 0.5
MIN_SCORE = 0.001


def convert_centernet(model_json: Path, out_dir: Path, s: ModelSpec) -> None:
    """Write the SavedModel (OD API signature), the TF Lite peaks model and the metadata."""
    tf = import_tensorflow()

    from .tfjs import load_graph_model

    module = build_centernet(load_graph_model(model_json), s)
    try:
        tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.__call__})
        # The same network for TF Lite (XNNPACK): about twice as fast on a CPU. Decoding and
        # NMS stay outside it (vidstream.lite), in NumPy.
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [module.peaks.get_concrete_function()], module
        )
        (out_dir / TFLITE_FILE).write_bytes(converter.convert())
    except Exception as e:
        raise ModelPullError(f"saving the converted {s.name} model failed: {e}") from e
    meta = {
        "name": s.name,
        "description": s.description,
        "source": f"npm {s.package}@{s.version}",
        "licence": s.licence,
        "format_version": FORMAT_VERSION,
        "input_size": list(s.input_size),
        "resize": "letterbox",
        "labels": "coco",
        "num_classes": s.num_classes,
        "stride": s.stride,
        "max_detections": s.max_detections,
        "nms_iou": NMS_IOU,
        "min_score": MIN_SCORE,
        "tflite": TFLITE_FILE,
        "converted_with": f"tensorflow {tf.__version__}",
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")


# -- export --------------------------------------------------------------------------------
OD_API_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def export(model: str, fmt: str, out: str | Path, *, overwrite: bool = False,
           progress: Progress | None = None) -> Path:
    """Write ``model`` as a SavedModel directory or a TF1 frozen graph ``.pb``.

    The frozen graph uses the TF1 Object Detection API tensor names (``image_tensor:0`` in,
    ``detection_boxes:0`` ... out), so the EIPredictor write-up's constructor works on it as is.
    """
    src = resolve(model, progress=progress)
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists (use -y to overwrite)")
    if fmt == "saved-model":
        if not src.is_dir():
            raise ModelError(f"{src}: only a SavedModel directory can be exported as saved-model")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        shutil.copytree(src, out)
        return out
    if fmt != "frozen-graph":
        raise ModelError(f"unknown export format {fmt!r}; use saved-model or frozen-graph")
    graph_def = frozen_od_graph(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(graph_def.SerializeToString())
    return out


def frozen_od_graph(saved_model: Path) -> Any:
    """The SavedModel's serving signature as a frozen GraphDef with TF1 OD API names."""
    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    loaded = tf.saved_model.load(str(saved_model))
    fn = loaded.signatures["serving_default"]
    specs = fn.structured_input_signature[1]
    if len(specs) != 1:
        raise ModelError(f"{saved_model}: frozen-graph export needs one image input")
    missing = [k for k in OD_API_OUTPUTS if k not in fn.structured_outputs]
    if missing:
        raise ModelError(f"{saved_model}: not an Object Detection API model (no {missing})")
    frozen = convert_variables_to_constants_v2(fn)
    inner = frozen.graph.as_graph_def()
    placeholder = next(t for t in frozen.inputs if t.dtype != tf.resource)
    # the frozen function's outputs follow the signature's outputs flattened (keys sorted)
    keys = tf.nest.flatten({k: k for k in fn.structured_outputs})
    by_key = dict(zip(keys, frozen.outputs, strict=True))
    outputs = {k: by_key[k].name for k in OD_API_OUTPUTS}
    with tf.Graph().as_default() as graph:
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        tensors = tf.compat.v1.import_graph_def(
            inner,
            input_map={placeholder.name: image},
            return_elements=list(outputs.values()),
            name="model",
        )
        for key, t in zip(outputs, tensors, strict=True):
            tf.identity(t, name=key)
    return graph.as_graph_def()
