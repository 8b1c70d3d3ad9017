"""Sinks: the annotated video, the detections as JSON lines, per-class counts.

>>> from vidstream import Detector, Pipeline, VideoSource
>>> writer, counter = VideoWriter("out.mp4", preset="veryfast"), ClassCounter()
>>> summary = Pipeline(VideoSource("clip.mp4"), [Detector()], [writer, counter]).run()
>>> writer.frames_written, counter.frames, "person" in counter.to_dict()["classes"]
(12, 12, True)

Alone, the video writer encodes frames you made (RGB arrays, with detections to draw or not):

>>> import numpy as np
>>> from vidstream import Detections
>>> person = Detections(boxes=[[8, 8, 40, 56]], scores=[0.9], class_ids=[1])
>>> with VideoWriter("made.mp4", rate=25) as writer:
...     for i in range(10):
...         writer.write(np.full((64, 96, 3), 20 * i, np.uint8), person)
>>> writer.frames_written
10

The video keeps the input's timestamps (so its exact frame rate and duration) and copies its
audio unchanged; closing finalizes the file whatever happened before, so a run that fails or
is interrupted still leaves a playable video of every frame processed.

Every output is written whole or not at all (a temporary name beside it, renamed into place
when it is finished), never replaces an input, and is locked while a run writes it: see
:mod:`.output`.

The modules, one job each: :mod:`.output` (can the output be written? is it the input? whole
or absent), :mod:`.video` (the encoder), :mod:`.audio` (the audio remux), :mod:`.data`
(detections and counts).
"""

from __future__ import annotations

from .audio import AudioCopier
from .data import ClassCounter, DetectionsWriter
from .output import OutputFile, check_distinct, check_output, check_outputs, write_atomic
from .video import FRAGMENTED_MOVFLAGS, VideoWriter

__all__ = [
    "FRAGMENTED_MOVFLAGS",
    "AudioCopier",
    "ClassCounter",
    "DetectionsWriter",
    "OutputFile",
    "VideoWriter",
    "check_distinct",
    "check_output",
    "check_outputs",
    "write_atomic",
]
