"""An in-process TF Serving stand-in on the official protos, for the tfserving:// client.

It implements ``PredictionService.Predict`` and ``GetModelMetadata`` of
``tensorflow-serving-api`` over a local predictor, and is configured like TF Serving's own
server: 2 GB messages (``max_bytes=None`` keeps Python gRPC's 4 MB default, to show what that
default does to a raw 1080p frame). Loopback only; started and stopped by the tests.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from vidstream.backends.tfserving import MAX_MESSAGE, from_tensor_proto, to_tensor_proto


class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, name: str, predictor, input_shape=(-1, -1, -1, 3)) -> None:
        self.name = name
        self.predictor = predictor  # {"input_tensor": images} -> OD API outputs
        self.input_shape = input_shape
        self.calls = 0

    def _check(self, spec, context) -> None:
        if spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({spec.name})")

    def GetModelMetadata(self, request, context):
        self._check(request.model_spec, context)
        sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        info = sig.inputs["input_tensor"]
        info.name, info.dtype = "serving_default_input_tensor:0", 4  # DT_UINT8
        for d in self.input_shape:
            info.tensor_shape.dim.add(size=d)
        for key in ("detection_boxes", "detection_scores", "detection_classes",
                    "num_detections"):
            sig.outputs[key].name = f"StatefulPartitionedCall:{key}"
            sig.outputs[key].dtype = 1  # DT_FLOAT
        sigs = get_model_metadata_pb2.SignatureDefMap()
        sigs.signature_def["serving_default"].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = 1
        response.metadata["signature_def"].Pack(sigs)
        return response

    def Predict(self, request, context):
        self._check(request.model_spec, context)
        self.calls += 1
        images = from_tensor_proto(request.inputs["input_tensor"])
        out = self.predictor({"input_tensor": images})
        response = predict_pb2.PredictResponse()
        for key in request.output_filter or out:
            response.outputs[key].CopyFrom(to_tensor_proto(np.asarray(out[key], np.float32)))
        return response


class TFServingStandIn:
    """``with TFServingStandIn("m", predictor) as server: server.endpoint``."""

    def __init__(self, name: str, predictor, *, max_bytes: int | None = MAX_MESSAGE,
                 port: int = 0, **kwargs) -> None:
        self.servicer = Servicer(name, predictor, **kwargs)
        self.name = name
        options = ([] if max_bytes is None else
                   [("grpc.max_send_message_length", max_bytes),
                    ("grpc.max_receive_message_length", max_bytes)])
        self.server = grpc.server(futures.ThreadPoolExecutor(4), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            self.servicer, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        return f"tfserving://127.0.0.1:{self.port}/{self.name}"

    def start(self) -> TFServingStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait()

    def __enter__(self) -> TFServingStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
