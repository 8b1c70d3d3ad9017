"""The real detector and tracker on a composited clip: a photographed person walks across a
counting line and back, so the truth is known by construction (one crossing each way, one id
for the walk), and the sample app counts it."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from make_clip import Sprite, _resize, encode, render, skimage_photo

from vidstream import DetectionsWriter, Detector, Pipeline, VideoSource, VideoWriter
from vidstream.annotate import Annotator
from vidstream.settings import DEFAULTS
from vidstream.tracking import Tracker, parse_line

pytestmark = pytest.mark.model

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
W, H, STEPS, RATE = 640, 360, 30, Fraction(15)
LINE = "door:0.5,1,0.5,0"  # drawn upwards: walking left to right across it is "in"


@pytest.fixture(scope="module")
def walk(centernet, tmp_path_factory) -> Path:
    """The astronaut walks from the left edge to the right and back (2 x 30 frames)."""
    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    background = (np.array([70, 90, 110], np.float32) * (0.7 + 0.6 * yy)).astype(np.uint8)
    background = np.broadcast_to(background, (H, W, 3)).copy()
    person = _resize(skimage_photo("astronaut"), 300)
    there = Sprite("astronaut", person, (-40, 40), (W - 260, 40))
    back = Sprite("astronaut", person, (W - 260, 40), (-40, 40))

    def images():
        for sprite in (there, back):
            for i in range(STEPS):
                yield render(background, [sprite], i / (STEPS - 1))

    path = tmp_path_factory.mktemp("walk") / "walk.mp4"
    encode(path, images(), rate=RATE)
    return path


def test_a_person_walking_across_and_back_counts_once_each_way(walk, tmp_path):
    out, jsonl = tmp_path / "walk-counted.mp4", tmp_path / "walk.jsonl"
    line = parse_line(LINE)
    summary = Pipeline(
        VideoSource(walk),
        [Detector(classes=["person"], track_floor=DEFAULTS.track_floor), Tracker(lines=[line])],
        [VideoWriter(out, annotator=Annotator(lines=[line])), DetectionsWriter(jsonl)],
    ).run()
    door = summary.details["lines"]["door"]
    assert (door["in"], door["out"]) == (1, 1)
    assert door["by_class"] == {"person": {"in": 1, "out": 1}}
    records = [json.loads(x) for x in jsonl.read_text().splitlines()]
    ids = {d["track"] for r in records for d in r["detections"]}
    assert len(ids) == 1  # one id for the whole walk, there and back
    events = [(e["line"], e["direction"], e["label"]) for r in records
              for e in r.get("events", [])]
    assert events == [("door", "in", "person"), ("door", "out", "person")]
    crossed = [r["time"] for r in records if r.get("events")]
    assert crossed[0] < STEPS / RATE < crossed[1]  # the first on the way there, then back
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2 * STEPS


def test_the_count_line_sample(walk, tmp_path):
    r = subprocess.run([sys.executable, str(SAMPLES / "count_line.py"), str(walk),
                        "--line", LINE, "--classes", "person", "-o", str(tmp_path / "o.mp4")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert "door  in   person #1  (in 1, out 0)" in lines[0]
    assert "door  out  person #1  (in 1, out 1)" in lines[1]
    assert lines[-1] == "door: in 1, out 1 (person 1/1)"
    assert (tmp_path / "o.mp4").exists()
