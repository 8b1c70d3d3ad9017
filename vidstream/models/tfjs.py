"""Import a TensorFlow.js *graph model* (``model.json`` + weight shards) as a TF GraphDef.

A TF.js graph model is a GraphDef in protobuf-JSON form whose ``Const`` nodes have their
values stripped into binary shards listed, in order, by ``weightsManifest``. TF.js also fuses
ops that TensorFlow cannot import as they are: ``_FusedConv2D`` (missing the ``TArgs`` attr)
and ``FusedDepthwiseConv2dNative`` (unknown to TF). They are rewritten here into the plain ops
they stand for, with the original node name kept on the last op so consumers still connect.

The converters on PyPI (``tensorflowjs``, ``tfjs-graph-converter``) pin old TensorFlow
versions; the import is small enough to own.

>>> gd = load_graph_model("models/centernet.json")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..tfruntime import import_tensorflow

_FUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh"}
_CONV_ATTRS = ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings")


def read_weights(model: dict, folder: Path) -> dict[str, np.ndarray]:
    """Decode every weight of ``weightsManifest`` (float16/uint8/uint16 quantisation too)."""
    weights: dict[str, np.ndarray] = {}
    for group in model.get("weightsManifest", []):
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w.get("shape", [])]
            count = int(np.prod(shape)) if shape else 1
            dtype = np.dtype(w["dtype"] if w["dtype"] != "bool" else np.bool_)
            q = w.get("quantization")
            stored = np.dtype(q["dtype"]) if q else dtype
            size = count * stored.itemsize
            if offset + size > len(data):
                raise ModelError(f"{folder}: weight shards end before weight {w['name']!r}")
            raw = np.frombuffer(data, stored, count, offset)
            offset += size
            if q and q["dtype"] in ("uint8", "uint16"):
                raw = raw.astype(np.float32) * float(q["scale"]) + float(q["min"])
            weights[w["name"]] = raw.astype(dtype).reshape(shape)
        if offset != len(data):
            raise ModelError(f"{folder}: {len(data) - offset} bytes of weights left unread")
    return weights


def _split_fused(node: Any, node_def_cls: Any) -> list[Any]:
    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    if int(node.attr["num_args"].i) != 1 or not fused or fused[0] != "BiasAdd":
        raise ModelError(f"unsupported fused op in {node.name}: {node.op} {fused}")
    extra = fused[1:]
    if any(op not in _ACTIVATIONS for op in extra):
        raise ModelError(f"unsupported fused activation in {node.name}: {extra}")
    base = _FUSED[node.op]
    conv = node_def_cls(name=node.name + "/conv", op=base, input=list(node.input[:2]))
    for key in (*_CONV_ATTRS, "use_cudnn_on_gpu") if base == "Conv2D" else _CONV_ATTRS:
        if key in node.attr:
            conv.attr[key].CopyFrom(node.attr[key])
    bias = node_def_cls(name=node.name + "/bias", op="BiasAdd", input=[conv.name, node.input[2]])
    bias.attr["T"].CopyFrom(node.attr["T"])
    bias.attr["data_format"].CopyFrom(node.attr["data_format"])
    chain = [conv, bias]
    for op in extra:
        act = node_def_cls(name=f"{node.name}/{op}", op=op, input=[chain[-1].name])
        act.attr["T"].CopyFrom(node.attr["T"])
        chain.append(act)
    chain[-1].name = node.name  # consumers refer to the fused node's name
    return chain


def load_graph_model(model_json: str | Path) -> Any:
    """A ``tf.compat.v1.GraphDef`` with weights filled in and fused ops split."""
    tf = import_tensorflow()
    from google.protobuf import json_format

    path = Path(model_json)
    try:
        model = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: not a readable TF.js model.json: {e}") from e
    if model.get("format") not in (None, "graph-model") or "modelTopology" not in model:
        raise ModelError(f"{path}: not a TF.js graph model (format {model.get('format')!r})")
    topology = model["modelTopology"]
    source = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": topology.get("node", [])}, source, ignore_unknown_fields=True)
    weights = read_weights(model, path.parent)

    graph_def = tf.compat.v1.GraphDef()
    node_def_cls = type(source.node[0]) if source.node else None
    for node in source.node:
        node.device = ""  # TF.js pins everything to /device:CPU:0
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
        if node.op in _FUSED:
            graph_def.node.extend(_split_fused(node, node_def_cls))
        else:
            graph_def.node.append(node)
    missing = [n.name for n in graph_def.node if n.op == "Const" and not n.attr["value"].tensor
               .ByteSize()]
    if missing:
        raise ModelError(f"{path}: no weights for {len(missing)} constants, e.g. {missing[0]}")
    graph_def.versions.producer = int(topology.get("versions", {}).get("producer", 1395) or 1395)
    return graph_def
