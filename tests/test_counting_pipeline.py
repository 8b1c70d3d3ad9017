"""Tracking and counting inside the multi-stream engine: per-stream counts in the summary, in
the Prometheus metrics, and on the annotated frames."""

from __future__ import annotations

import urllib.request
from fractions import Fraction

import numpy as np
import pytest
from fakemodel import RedSquares
from test_engine import Collect

from vidstream import Detector, Frame, Pipeline, Source
from vidstream.annotate import Annotator
from vidstream.frames import StreamInfo
from vidstream.tracking import Tracker, parse_line

W, H, SIDE = 160, 64, 12


class Crossing(Source):
    """A red square moving across the frame, left to right or back (``step`` px a frame)."""

    def __init__(self, step: int, frames: int = 40) -> None:
        self.step, self.n = step, frames

    def open(self) -> StreamInfo:
        return StreamInfo(f"fake://cross{self.step}", W, H, Fraction(25), Fraction(1, 25),
                          frames=self.n)

    def frames(self):
        for i in range(self.n):
            x = 4 + i * self.step if self.step > 0 else W - 4 - SIDE + i * self.step
            img = np.zeros((H, W, 3), np.uint8)
            img[26:26 + SIDE, x:x + SIDE] = (255, 0, 0)
            yield Frame.from_array(img, i, i, Fraction(1, 25))


def test_two_streams_count_their_own_crossings():
    # a line drawn upwards: moving left to right across it is "in"
    line = "door:0.5,1,0.5,0"
    sinks = {0: Collect(), 1: Collect()}
    tracker = Tracker(lines=[line])
    p = Pipeline([Crossing(3), Crossing(-3)], [Detector(RedSquares()), tracker],
                 lambda i: [sinks[i]])
    with pytest.importorskip("vidstream.metrics").serve_metrics(p, port=0) as server:
        summary = p.run()
        text = urllib.request.urlopen(server.url, timeout=10).read().decode()
    lines = [s.details["lines"]["door"] for s in summary.streams]
    assert (lines[0]["in"], lines[0]["out"]) == (1, 0)
    assert (lines[1]["in"], lines[1]["out"]) == (0, 1)
    assert lines[0]["by_class"] == {"car": {"in": 1, "out": 0}}
    # one track per stream, with an id on every tracked detection
    for i in (0, 1):
        ids = {int(t) for f in sinks[i].frames if f.detections is not None
               for t in f.detections.track_ids if t >= 0}
        assert len(ids) == 1
        events = [e for f in sinks[i].frames for e in f.events]
        assert [(e.name, e.direction) for e in events] == [("door", "in" if i == 0 else "out")]
    metric = 'vidstream_line_crossings_total{{direction="{}",label="car",line="door",stream="{}"}}'
    assert metric.format("in", 0) + " 1.0" in text
    assert metric.format("out", 1) + " 1.0" in text
    from vidstream.cli.dashboard import counts_text

    assert counts_text(p) == "counts: [0] door in 1 out 0  [1] door in 0 out 1"
    # the annotator shows the running count, from the frames' events
    annotator = Annotator(lines=[parse_line(line)])
    for f in sinks[0].frames:
        annotator.annotate(np.zeros((H, W, 3), np.uint8), f.detections, f.events)
    assert annotator.overlay_text() == ["door in 1 out 0"]


def test_track_ids_are_drawn_next_to_the_label():
    from vidstream import Detections

    img = np.zeros((120, 200, 3), np.uint8)
    with_id = Detections(np.array([[20, 40, 90, 100]]), np.array([0.5]), np.array([1]),
                         track_ids=np.array([17]))
    plain = Detections(np.array([[20, 40, 90, 100]]), np.array([0.5]), np.array([1]))
    a, b = Annotator(), Annotator()
    assert a._tags(120, 200, with_id)[0].text == "#17 person 0.50"
    assert b._tags(120, 200, plain)[0].text == "person 0.50"
    drawn = a.annotate(img.copy(), with_id)
    assert drawn.any()
