"""Write a model out: as a SavedModel directory, or as a TF1 frozen graph with the OD API's names.

>>> from vidstream import models
>>> models.export("centernet", "frozen-graph", "frozen_inference_graph.pb")   # doctest: +SKIP
PosixPath('frozen_inference_graph.pb')
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelError, OutputError
from ..tfruntime import import_tensorflow
from .registry import Progress, resolve

EXPORT_FORMATS = ("saved-model", "frozen-graph")
OD_API_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def export(model: str, fmt: str, out: str | Path, *, overwrite: bool = False,
           progress: Progress | None = None) -> Path:
    """Write ``model`` as a SavedModel directory or a TF1 frozen graph ``.pb``.

    The frozen graph uses the TF1 Object Detection API tensor names (``image_tensor:0`` in,
    ``detection_boxes:0`` ... out), so the EIPredictor write-up's constructor works on it as is.
    """
    if fmt not in EXPORT_FORMATS:  # before resolve(): that may pull the model
        raise ModelError(f"unknown export format {fmt!r}; use {' or '.join(EXPORT_FORMATS)}",
                         param="fmt")
    src = Path(resolve(model, progress=progress))
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists", param="overwrite")
    if fmt == "saved-model":
        if not src.is_dir():
            raise ModelError(
                f"{src}: only a SavedModel directory can be exported as saved-model", param="fmt"
            )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        shutil.copytree(src, out)
        return out
    graph_def = frozen_od_graph(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(graph_def.SerializeToString())
    return out


def frozen_od_graph(saved_model: str | Path) -> Any:
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
