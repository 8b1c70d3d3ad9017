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

from .annotate import Annotator
from .bench import BenchConfig, BenchOptions, BenchResult, run_bench
from .bench.report import Recommendation, Run, load_runs, recommend
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
from .predictor import EIPredictor
from .sinks import ClassCounter, DetectionsWriter, VideoWriter
from .sources import ArraySource, VideoSource
from .stage import FunctionSink, FunctionStage, Sink, Source, Stage
from .stats import StageStats
from .summary import Summary

__all__ = [
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
    "Price",
    "Recommendation",
    "Run",
    "RunConfig",
    "ShutdownTimeout",
    "Sink",
    "Source",
    "SourceError",
    "Stage",
    "StageError",
    "StageStats",
    "StallError",
    "StreamInfo",
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
