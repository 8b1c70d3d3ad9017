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
from .output import OutputFile, check_output, describe_output


class DetectionsWriter(Sink):
    """One JSON object per frame: ``{"index", "time", "detections": [...]}`` (boxes in pixels).

    A line per frame, flushed as it is written, so the file can be followed while it grows
    and a killed run keeps every whole line: it is written at ``path`` itself and locked for
    the run, so a second run aiming at it is refused instead of interleaving its lines.
    ``in_place=False`` writes a temporary name instead and renames it into place on close
    (the file appears whole or not at all). A line that cannot be written (a full disk)
    stops the writer: a partial last line is cut off, or the temporary file removed;
    :attr:`error` and :meth:`describe` say so.
    """

    name = "detections"

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = True,
                 in_place: bool = True) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.in_place = in_place
        self._fh: TextIO | None = None
        self._out: OutputFile | None = None
        self._closed = False
        self.lines = 0
        self.error: str | None = None
        self.finalized = False

    def open(self, info: StreamInfo | None = None) -> None:
        check_output(self.path, overwrite=self.overwrite)
        self._out = OutputFile(self.path, overwrite=self.overwrite, in_place=self.in_place)
        target = self._out.begin()
        try:
            self._fh = target.open("w", encoding="utf-8")
        except OSError as e:
            self._out.discard()
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
        if self.error is not None:
            raise OutputError(f"{self.path}: cannot write: {self.error}")
        if frame.events:  # a tracked object crossed a line or entered or left a zone
            record["events"] = [e.to_json() for e in frame.events]
        # a line per frame, flushed: an interrupted run keeps every frame it wrote
        try:
            self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._fh.flush()
        except OSError as e:  # e.g. the disk is full
            self.error = e.strerror or str(e)
            raise OutputError(f"{self.path}: cannot write: {self.error}") from e
        self.lines += 1

    def close(self) -> None:
        """Close the file and put it in place; raises OutputError when it is incomplete."""
        self._closed = True
        fh, self._fh = self._fh, None
        if fh is None:
            return
        out = self._out
        assert out is not None
        try:
            fh.close()
        except OSError as e:  # the last buffered bytes did not fit
            self.error = self.error or e.strerror or str(e)
        if self.error is None:
            try:
                out.commit()
            except OutputError as e:
                self.error = e.message
                self.lines = 0
                raise
            self.finalized = True
            return
        if self.in_place:
            out.release()
            _cut_partial_line(self.path)
            raise OutputError(f"{self.path}: incomplete ({self.error}): it holds the first "
                              f"{self.lines} frames")
        out.discard()
        self.lines = 0
        raise OutputError(f"{self.path}: not written ({self.error}); no file was left")

    def describe(self) -> dict[str, Any]:
        return {"detections_file": describe_output(self.path, finalized=self.finalized,
                                                   error=self.error, frames=self.lines)}


class ClassCounter(Sink):
    """Per-class totals over the run, written as JSON on close (when given a path).

    ``{"frames": 250, "classes": {"car": {"detections": 812, "frames": 247, "max_in_frame": 5}}}``
    """

    name = "counts"

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 overwrite: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.overwrite = overwrite
        self.frames = 0
        self.classes: dict[str, dict[str, int]] = {}
        self.error: str | None = None
        self.finalized = False
        self._out: OutputFile | None = None

    def open(self, info: StreamInfo | None = None) -> None:
        if self.path is not None:
            check_output(self.path, overwrite=self.overwrite)
            # locked from now (without overwrite), written whole on close
            self._out = OutputFile(self.path, overwrite=self.overwrite)
            self._out.begin()

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
        """Write the counts whole (temporary name, then rename), or leave no file."""
        out, self._out = self._out, None
        if out is None:
            return
        try:
            out.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OutputError as e:
            self.error = e.message
            raise
        finally:
            out.release()
        self.finalized = True

    def describe(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        return {"counts_file": describe_output(self.path, finalized=self.finalized,
                                               error=self.error, frames=self.frames)}


def _cut_partial_line(path: Path) -> None:
    """Drop a last line the disk took only part of: every line left is whole JSON."""
    try:
        with path.open("rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                fh.truncate(end)
    except OSError:
        pass
