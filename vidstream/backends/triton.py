"""``triton://HOST:PORT/MODEL``: a model on a Triton Inference Server, over gRPC.

The client side of ``vidstream serve`` (or any Triton serving an Object Detection API model
with a uint8 ``(H, W, 3)`` image input). Needs ``pip install 'vidstream[remote]'``
(``tritonclient[grpc]``). What every remote model does (letterbox, in-flight requests,
timeout, retries, fallback) is in :mod:`vidstream.backends.remote`.

>>> p = EIPredictor("triton://127.0.0.1:8001/centernet")            # doctest: +SKIP
>>> p.format, p.thread_safe, p.input_size                           # doctest: +SKIP
('triton', True, (512, 512))
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from ..errors import ModelError, ModelNotFoundError
from .base import LoadOptions
from .remote import RemoteError, RemotePredictor, Unavailable
from .remote_stats import ServerCounts

_INT32_MAX = 2 ** (struct.Struct("i").size * 8 - 1) - 1
# gRPC codes that mean "no server here (yet)": worth retrying.
_RETRY = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")
_DTYPES = {"UINT8": np.uint8, "FP32": np.float32, "INT32": np.int32, "INT64": np.int64,
           "FP16": np.float16, "FP64": np.float64}


def _client_module() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError as e:
        raise ModelError("triton:// models need the Triton client: "
                         "pip install 'vidstream[remote]' (tritonclient[grpc])") from e
    return grpcclient


def counts_from_statistics(stats: dict[str, Any]) -> ServerCounts:
    """:class:`ServerCounts` from Triton's statistics (``get_inference_statistics(...,
    as_json=True)``), summed over the model's versions. Protobuf's JSON spells int64 as
    strings and leaves out zeros; a batch size's executions are its ``compute_infer`` count.

    >>> counts_from_statistics({"model_stats": [{"inference_count": "48",
    ...     "execution_count": "5", "batch_stats": [
    ...         {"batch_size": "16", "compute_infer": {"count": "3"}},
    ...         {"batch_size": "0"}]}]})
    ServerCounts(inference_count=48, execution_count=5, batch_sizes={16: 3})
    """
    inferences = executions = 0
    sizes: dict[int, int] = {}
    for model in stats.get("model_stats", []):
        inferences += int(model.get("inference_count", 0))
        executions += int(model.get("execution_count", 0))
        for b in model.get("batch_stats", []):
            n = int(b.get("compute_infer", {}).get("count", 0))
            if n:
                size = int(b.get("batch_size", 0))
                sizes[size] = sizes.get(size, 0) + n
    return ServerCounts(inferences, executions, dict(sorted(sizes.items())))


class TritonPredictor(RemotePredictor):
    """A model served by Triton, called over gRPC with raw uint8 tensors."""

    scheme = "triton"

    def __init__(self, ref: str, options: LoadOptions) -> None:
        super().__init__(ref, options)

    def _connect(self) -> None:
        grpcclient = _client_module()
        from tritonclient.utils import InferenceServerException

        self._grpc = grpcclient
        self._error = InferenceServerException
        self._client = grpcclient.InferenceServerClient(
            self.endpoint.address,
            channel_args=[
                # A raw 1080p frame is 6.2 MB: lift gRPC's 4 MB default, as Triton does.
                ("grpc.max_send_message_length", _INT32_MAX),
                ("grpc.max_receive_message_length", _INT32_MAX),
                # Find a restarted server within a second, not gRPC's default of minutes.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )

    def _raise(self, e: Exception) -> None:
        status = str(getattr(e, "status", lambda: "")() or "")
        message = getattr(e, "message", lambda: str(e))() or str(e)
        if any(code in status for code in _RETRY):
            raise Unavailable(message.splitlines()[0]) from e
        if "NOT_FOUND" in status or "unknown model" in message:
            try:
                index = self._client.get_model_repository_index(as_json=True, client_timeout=2)
                names = sorted(m["name"] for m in index.get("models", []))
            except Exception:
                names = []
            raise ModelNotFoundError(
                f"{self.model_dir}: the server has no model {self.endpoint.model!r}"
                + (f"; it serves: {', '.join(names)}" if names else ""), param="model") from e
        raise RemoteError(f"{self.model_dir}: {message.strip()}") from e

    def _metadata(self, timeout: float) -> tuple[dict[str, tuple[tuple[int | None, ...], Any]],
                                                 list[str], int | None]:
        name, version = self.endpoint.model, self.endpoint.version
        try:
            meta = self._client.get_model_metadata(name, version, as_json=True,
                                                   client_timeout=timeout)
            config = self._client.get_model_config(name, version, as_json=True,
                                                   client_timeout=timeout)
        except self._error as e:
            self._raise(e)
        max_batch = int(config.get("config", {}).get("max_batch_size", 0))
        inputs = {}
        for i in meta.get("inputs", []):
            dims = [int(d) for d in i["shape"]]
            if max_batch:  # the metadata's shape includes the batch dimension (-1)
                dims = dims[1:]
            dtype = _DTYPES.get(i["datatype"])
            if dtype is None:
                raise ModelError(f"{self.model_dir}: input {i['name']!r} is {i['datatype']}; "
                                 "expected UINT8 images")
            inputs[i["name"]] = (tuple(d if d > 0 else None for d in dims), dtype)
        outputs = [o["name"] for o in meta.get("outputs", [])]
        return inputs, outputs, max_batch or None

    def _server_counts(self, timeout: float) -> ServerCounts | None:
        # Server-wide counts (every client's): PyTriton guards this API with a token unless
        # the server opens it, as `vidstream serve` does; a guarded one answers an error.
        try:
            stats = self._client.get_inference_statistics(
                self.endpoint.model, self.endpoint.version, as_json=True,
                client_timeout=timeout)
        except self._error:
            return None
        return counts_from_statistics(stats)

    def _infer(self, batch: np.ndarray, outputs: list[str], timeout: float
               ) -> dict[str, np.ndarray]:
        grpc = self._grpc
        item = grpc.InferInput(self._input, list(batch.shape), "UINT8")
        item.set_data_from_numpy(batch)  # raw tensor bytes on the wire
        try:
            result = self._client.infer(
                self.endpoint.model, [item], model_version=self.endpoint.version,
                outputs=[grpc.InferRequestedOutput(o) for o in outputs],
                client_timeout=timeout)
        except self._error as e:
            self._raise(e)
        out = {}
        for name in outputs:
            value = result.as_numpy(name)
            if value.ndim == 2 and value.shape[1] == 1 and name == "num_detections":
                value = value[:, 0]  # Triton gives every output a dimension per item
            out[name] = value
        return out

    def close(self) -> None:
        super().close()
        try:
            self._client.close()
        except Exception:
            pass
