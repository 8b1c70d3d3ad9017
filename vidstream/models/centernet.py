"""The default detector, MobileNetV3-CenterNet (COCO, 80 classes): its build and conversion.

The TF.js graph (see :mod:`vidstream.models.tfjs`) is wrapped into a TF2 SavedModel with the
Object Detection API signature (uint8 ``input_tensor`` of any size in; ``detection_boxes``
normalised ``ymin, xmin, ymax, xmax``, ``detection_scores``, ``detection_classes`` as 1-based
COCO label-map ids, ``num_detections`` out), and the same network is written for TF Lite
beside it, with a ``vidstream.json`` saying how both are fed.

>>> from vidstream.models import REGISTRY
>>> convert_centernet(json_path, out_dir, REGISTRY["centernet"])       # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ModelPullError
from ..labels import COCO80_TO_COCO90
from ..tfruntime import import_tensorflow
from .metadata import METADATA_FILE
from .spec import ModelSpec
from .tfjs import load_graph_model

FORMAT_VERSION = 2  # bump when the converted layout changes: older caches are pulled again
TFLITE_FILE = "centernet.tflite"
NMS_IOU = 0.5  # the same in the SavedModel's graph and in the TF Lite backend's NumPy decoding
MIN_SCORE = 0.001


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

    class CenterNet(tf.Module):  # type: ignore[name-defined]
        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")]
        )
        def __call__(self, input_tensor: Any) -> dict[str, Any]:
            return detect(input_tensor)

        @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
        def peaks(self, x: Any) -> tuple[Any, Any, Any]:
            return peaks(x)

    return CenterNet()



def convert_centernet(model_json: Path, out_dir: Path, s: ModelSpec) -> None:
    """Write the SavedModel (OD API signature), the TF Lite peaks model and the metadata."""
    tf = import_tensorflow()
    module = build_centernet(load_graph_model(model_json), s)
    try:
        tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.__call__})
        # The same network for TF Lite (XNNPACK): about twice as fast on a CPU. Decoding and
        # NMS stay outside it (vidstream.backends.tflite), in NumPy.
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


