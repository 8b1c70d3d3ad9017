"""``tfserving://HOST:PORT/MODEL``: a model on TensorFlow Serving, over gRPC.

TF Serving's ``PredictionService`` (``Predict`` and ``GetModelMetadata``) from the official
protos of ``tensorflow-serving-api`` (in ``vidstream[remote]``). The channel allows 2 GB
messages, as TF Serving's own server does: gRPC's default 4 MB would reject a raw 1080p frame
(6.2 MB) with ``RESOURCE_EXHAUSTED``. The image goes as a uint8 ``TensorProto`` whose
``tensor_content`` holds the raw pixels. What every remote model does (letterbox, in-flight
requests, timeout, retries, fallback) is in :mod:`vidstream.backends.remote`.

>>> p = EIPredictor("tfserving://127.0.0.1:8500/centernet")          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError, ModelNotFoundError
from .base import LoadOptions
from .remote import RemoteError, RemotePredictor, Unavailable

MAX_MESSAGE = 2**31 - 1  # TF Serving's own limit (2 GB)
_RETRY = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")


def _apis() -> Any:
    try:
        import grpc
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            model_pb2,
            predict_pb2,
            prediction_service_pb2_grpc,
        )
    except ImportError as e:
        raise ModelError("tfserving:// models need TF Serving's API: "
                         "pip install 'vidstream[remote]' (tensorflow-serving-api)") from e
    return grpc, get_model_metadata_pb2, model_pb2, predict_pb2, prediction_service_pb2_grpc


def channel_options() -> list[tuple[str, int]]:
    """gRPC options of a channel (or server) that carries raw frames."""
    return [("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000)]


def to_tensor_proto(array: np.ndarray) -> Any:
    """A numpy array as a ``TensorProto`` with its raw bytes in ``tensor_content``."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    dtypes = {np.dtype(np.uint8): types_pb2.DT_UINT8, np.dtype(np.float32): types_pb2.DT_FLOAT,
              np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64}
    array = np.ascontiguousarray(array)
    if array.dtype not in dtypes:
        raise ModelError(f"cannot send a {array.dtype} tensor")
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in array.shape])
    return tensor_pb2.TensorProto(dtype=dtypes[array.dtype], tensor_shape=shape,
                                  tensor_content=array.tobytes())


def from_tensor_proto(proto: Any) -> np.ndarray:
    """A ``TensorProto`` (raw ``tensor_content`` or typed ``*_val`` fields) as numpy."""
    from tensorflow.core.framework import types_pb2

    dtypes = {types_pb2.DT_UINT8: (np.uint8, "int_val"), types_pb2.DT_FLOAT: (np.float32,
              "float_val"), types_pb2.DT_INT32: (np.int32, "int_val"),
              types_pb2.DT_INT64: (np.int64, "int64_val"),
              types_pb2.DT_DOUBLE: (np.float64, "double_val")}
    if proto.dtype not in dtypes:
        raise ModelError(f"unsupported tensor type {proto.dtype} in the server's answer")
    dtype, field = dtypes[proto.dtype]
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype).reshape(shape).copy()
    values = np.asarray(getattr(proto, field), dtype)
    if values.size == 1 and int(np.prod(shape)) > 1:
        values = np.full(shape, values[0], dtype)
    return values.reshape(shape)


class TFServingPredictor(RemotePredictor):
    """A model served by TensorFlow Serving, called with ``Predict`` over gRPC."""

    scheme = "tfserving"
    signature = "serving_default"

    def __init__(self, ref: str, options: LoadOptions) -> None:
        self.signature = options.signature or "serving_default"
        super().__init__(ref, options)

    def _connect(self) -> None:
        grpc, self._meta_pb2, self._model_pb2, self._predict_pb2, svc = _apis()
        self._grpc = grpc
        self._channel = grpc.insecure_channel(self.endpoint.address, options=channel_options())
        self._stub = svc.PredictionServiceStub(self._channel)

    def _spec(self) -> Any:
        spec = self._model_pb2.ModelSpec(name=self.endpoint.model,
                                         signature_name=self.signature)
        if self.endpoint.version:
            spec.version.value = int(self.endpoint.version)
        return spec

    def _raise(self, e: Any) -> None:
        code = e.code().name if hasattr(e, "code") else ""
        detail = (e.details() if hasattr(e, "details") else str(e)) or code
        if code in _RETRY:
            raise Unavailable(f"{code}: {detail}") from e
        if code == "NOT_FOUND":
            raise ModelNotFoundError(f"{self.model_dir}: {detail}", param="model") from e
        raise RemoteError(f"{self.model_dir}: {code}: {detail}") from e

    def _metadata(self, timeout: float) -> tuple[dict[str, tuple[tuple[int | None, ...], Any]],
                                                 list[str], int | None]:
        request = self._meta_pb2.GetModelMetadataRequest(model_spec=self._spec(),
                                                         metadata_field=["signature_def"])
        try:
            response = self._stub.GetModelMetadata(request, timeout=timeout)
        except self._grpc.RpcError as e:
            self._raise(e)
        sigs = self._meta_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigs)
        if self.signature not in sigs.signature_def:
            raise ModelError(f"{self.model_dir}: no signature {self.signature!r}; it has "
                             f"{', '.join(sorted(sigs.signature_def))}", param="model")
        sig = sigs.signature_def[self.signature]
        inputs: dict[str, tuple[tuple[int | None, ...], Any]] = {}
        for key, info in sig.inputs.items():
            dims = [d.size for d in info.tensor_shape.dim][1:]
            inputs[key] = (tuple(d if d > 0 else None for d in dims), np.uint8)
        return inputs, sorted(sig.outputs), None

    def _infer(self, batch: np.ndarray, outputs: list[str], timeout: float
               ) -> dict[str, np.ndarray]:
        request = self._predict_pb2.PredictRequest(model_spec=self._spec(),
                                                   output_filter=outputs)
        request.inputs[self._input].CopyFrom(to_tensor_proto(batch))
        try:
            response = self._stub.Predict(request, timeout=timeout)
        except self._grpc.RpcError as e:
            self._raise(e)
        return {k: from_tensor_proto(response.outputs[k]) for k in outputs}

    def close(self) -> None:
        super().close()
        self._channel.close()
