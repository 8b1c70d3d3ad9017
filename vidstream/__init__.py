"""vidstream: streaming video object detection with measured speed and cost.

>>> from vidstream import Detector, Pipeline, VideoSource, VideoWriter
>>> summary = Pipeline(VideoSource("clip.mp4"), [Detector()], [VideoWriter("out.mp4")]).run()
>>> summary.frames, summary.fps > 0
(12, True)

The README's "Python API" section walks through the rest: iterating over frames, custom
stages, and using the detector or the video writer alone.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .annotate import Annotator
from .channel import Channel
from .config import RunConfig, build_pipeline, load_pipeline_file
from .cost import CostEstimate, Price, load_catalog, usd_per_100k_inferences
from .detections import Detection, Detections, box_iou
from .detector import Detector
from .errors import (
    Cancelled,
    ConfigError,
    CorruptInputError,
    EmptyInputError,
    FrameTooLargeError,
    InputError,
    InputNotFoundError,
    ModelError,
    ModelNotFoundError,
    ModelPullError,
    NoVideoStreamError,
    OutputError,
    ShutdownTimeout,
    SourceError,
    StageError,
    StallError,
    TensorNameError,
    VidstreamError,
)
from .frames import Frame, StreamInfo
from .pipeline import Pipeline
from .predictor import EIPredictor, Predictor
from .settings import DEFAULTS, Settings
from .sinks import ClassCounter, DetectionsWriter, VideoWriter
from .sources import ArraySource, VideoSource
from .stage import FunctionSink, FunctionStage, Sink, Source, Stage
from .stats import StageStats
from .summary import StreamReport, Summary

if TYPE_CHECKING:
    from .bench import BenchConfig, BenchOptions, BenchResult, run_bench
    from .bench.report import Recommendation, Run, load_runs, recommend

# The cost explorer's names load on first use: most users of the library never sweep.
_LAZY = {
    "BenchConfig": "vidstream.bench",
    "BenchOptions": "vidstream.bench",
    "BenchResult": "vidstream.bench",
    "run_bench": "vidstream.bench",
    "Recommendation": "vidstream.bench.report",
    "Run": "vidstream.bench.report",
    "load_runs": "vidstream.bench.report",
    "recommend": "vidstream.bench.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidstream' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULTS",
    "Annotator",
    "ArraySource",
    "BenchConfig",
    "BenchOptions",
    "BenchResult",
    "Cancelled",
    "Channel",
    "ClassCounter",
    "ConfigError",
    "CorruptInputError",
    "CostEstimate",
    "Detection",
    "Detections",
    "DetectionsWriter",
    "Detector",
    "EIPredictor",
    "EmptyInputError",
    "Frame",
    "FrameTooLargeError",
    "FunctionSink",
    "FunctionStage",
    "InputError",
    "InputNotFoundError",
    "ModelError",
    "ModelNotFoundError",
    "ModelPullError",
    "NoVideoStreamError",
    "OutputError",
    "Pipeline",
    "Predictor",
    "Price",
    "Recommendation",
    "Run",
    "RunConfig",
    "Settings",
    "ShutdownTimeout",
    "Sink",
    "Source",
    "SourceError",
    "Stage",
    "StageError",
    "StageStats",
    "StallError",
    "StreamInfo",
    "StreamReport",
    "Summary",
    "TensorNameError",
    "VideoSource",
    "VideoWriter",
    "VidstreamError",
    "__version__",
    "box_iou",
    "build_pipeline",
    "load_catalog",
    "load_pipeline_file",
    "load_runs",
    "recommend",
    "run_bench",
    "usd_per_100k_inferences",
]
