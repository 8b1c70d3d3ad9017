"""Sinks that write what was found, not pictures: detections as JSON lines, per-class counts.

>>> import numpy as np
>>> from vidstream import Detections, Frame
>>> people = Detections(boxes=[[8, 8, 40, 56]], scores=[0.9], class_ids=[1])
>>> with ClassCounter() as counter:
...     counter.process(Frame.from_array(np.zeros((64, 64, 3), np.uint8)).with_detections(people))
>>> counter.to_dict()
{'frames': 1, 'classes': {'person': {'detections': 1, 'frames': 1, 'max_in_frame': 1}}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from ..errors import OutputError
from ..frames import Frame, StreamInfo
from ..stage import Sink
from .output import check_output


class DetectionsWriter(Sink):
    """One JSON object per frame: ``{"index", "time", "detections": [...]}`` (boxes in pixels)."""

    name = "detections"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None
        self._closed = False
        self.lines = 0

    def open(self, info: StreamInfo | None = None) -> None:
        check_output(self.path, overwrite=True)
        try:
            self._fh = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from e

    def process(self, frame: Frame) -> None:
        if self._fh is None:
            if self._closed:
                raise OutputError(f"{self.path}: the writer is closed")
            self.open()
            assert self._fh is not None
        record: dict[str, Any] = {
            "index": frame.index,
            "time": None if frame.time is None else round(frame.time, 6),
            "detections": frame.detections.to_json() if frame.detections is not None else [],
        }
        if frame.events:  # a tracked object crossed a line or entered or left a zone
            record["events"] = [e.to_json() for e in frame.events]
        # a line per frame, flushed: an interrupted run keeps every frame it wrote
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        self._closed = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class ClassCounter(Sink):
    """Per-class totals over the run, written as JSON on close (when given a path).

    ``{"frames": 250, "classes": {"car": {"detections": 812, "frames": 247, "max_in_frame": 5}}}``
    """

    name = "counts"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.frames = 0
        self.classes: dict[str, dict[str, int]] = {}

    def open(self, info: StreamInfo | None = None) -> None:
        if self.path is not None:
            check_output(self.path, overwrite=True)

    def process(self, frame: Frame) -> None:
        self.frames += 1
        if frame.detections is None:
            return
        for label, n in frame.detections.count_by_label().items():
            c = self.classes.setdefault(label, {"detections": 0, "frames": 0, "max_in_frame": 0})
            c["detections"] += n
            c["frames"] += 1
            c["max_in_frame"] = max(c["max_in_frame"], n)

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "classes": dict(sorted(self.classes.items()))}

    def close(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
