"""Each sample app does what its docstring says, run as ``python samples/NAME.py INPUT`` on a
clip made from real photos (a person and a cup, with known boxes)."""

from __future__ import annotations

import csv
import http.server
import itertools
import json
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import av
import cv2
import numpy as np
import pytest
from make_clip import make_clip

pytestmark = pytest.mark.model

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAMES, RATE = 20, Fraction(10)  # two seconds of video


@pytest.fixture(scope="module")
def clip(centernet, tmp_path_factory):
    path = tmp_path_factory.mktemp("samples") / "photos.mp4"
    truth = make_clip(path, scene="photos", width=640, height=360, count=FRAMES, rate=RATE)
    return path, truth


def run_sample(name: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(SAMPLES / f"{name}.py"), *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def person_box(objects: list[dict]) -> list[float]:
    return next(o["box"] for o in objects if o["label"] == "person")


def test_count_per_second_writes_one_row_per_second_and_class(clip, tmp_path):
    path, _ = clip
    r = run_sample("count_per_second", path, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{FRAMES} frames" in r.stdout
    with (tmp_path / "photos-per-second.csv").open() as f:  # the default name, in cwd
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["second", "class", "max", "mean"]
    assert {r["second"] for r in rows} == {"0", "1"}
    people = {r["second"]: r for r in rows if r["class"] == "person"}
    assert set(people) == {"0", "1"}  # the astronaut is in view the whole time
    for row in people.values():
        assert row["max"] == "1"  # one person, however many frames showed her
        assert 0.5 <= float(row["mean"]) <= 1.0
    assert all(0 < float(r["mean"]) <= int(r["max"]) for r in rows)


def test_blur_people_blurs_the_person_and_nothing_else(clip, tmp_path):
    path, truth = clip
    r = run_sample("blur_people", path, "-o", "blurred.mp4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before, after = decoded(path), decoded(tmp_path / "blurred.mp4")
    assert len(after) == len(before) == FRAMES
    with av.open(str(tmp_path / "blurred.mp4")) as c:
        assert c.streams.video[0].average_rate == RATE
        times = [f.time for f in c.decode(video=0)]
    assert times == pytest.approx([i / RATE for i in range(FRAMES)])

    def sharpness(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    for i, (a, b, objects) in enumerate(zip(before, after, truth, strict=True)):
        x1, y1, x2, y2 = person_box(objects)
        w, h = x2 - x1, y2 - y1
        # inside: the middle of the person, where the face and the suit's details are
        inner = (slice(int(y1 + 0.2 * h), int(y2 - 0.2 * h)),
                 slice(int(max(x1, 0) + 0.2 * w), int(x2 - 0.2 * w)))
        change = np.abs(a[inner].astype(int) - b[inner]).mean()
        assert change > 25, (i, change)
        assert sharpness(b[inner]) < 0.05 * sharpness(a[inner]), i
        # outside: everything well away from the person (the cup included) is untouched,
        # apart from re-encoding noise
        outside = np.ones(a.shape[:2], bool)
        outside[max(int(y1 - 0.3 * h), 0):int(y2 + 0.3 * h),
                max(int(x1 - 0.3 * w), 0):int(x2 + 0.3 * w)] = False
        assert np.abs(a.astype(int) - b)[outside].mean() < 4, i


class Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append({"path": self.path, "type": self.headers["Content-Type"],
                                   "alert": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def alert_server():
    """A local endpoint that records the alerts posted to it (127.0.0.1, stops by itself)."""
    Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", Collector.received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_alert_posts_once_per_cooldown(clip, tmp_path, alert_server):
    path, truth = clip
    url, received = alert_server
    r = run_sample("alert", path, "--class", "person", "--cooldown", "1.0", "--threshold", "0.3",
                   "--url", url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # posted, not printed
    # the person is in view for the whole two seconds: one alert at once, one a second later
    times = [p["alert"]["time"] for p in received]
    assert len(times) == 2, received
    assert times[0] == 0.0 and 1.0 <= times[1] <= 1.3
    for post in received:
        alert = post["alert"]
        assert post["path"] == "/alerts" and post["type"] == "application/json"
        assert alert["label"] == "person" and alert["score"] >= 0.3
        assert alert["source"].endswith("photos.mp4")
        box, known = alert["box"], person_box(truth[alert["frame"]])
        ix = max(0, min(box[2], known[2]) - max(box[0], known[0]))
        iy = max(0, min(box[3], known[3]) - max(box[1], known[1]))
        assert ix * iy > 0.5 * (box[2] - box[0]) * (box[3] - box[1])


def test_alert_prints_and_stays_quiet_for_absent_classes(clip, tmp_path):
    path, _ = clip
    r = run_sample("alert", path, "--class", "person", "--cooldown", "0.5", "--threshold", "0.3",
                   cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(line) for line in r.stdout.splitlines()]
    times = [a["time"] for a in alerts]
    assert 3 <= len(times) <= 4, times
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    r = run_sample("alert", path, "--class", "car", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == ""


def test_alert_reports_an_unknown_class_in_one_line(clip, tmp_path):
    path, _ = clip
    r = run_sample("alert", path, "--class", "unicorn", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("alert: error: unknown class 'unicorn'")


def test_opencv_detect_uses_the_stages_alone(clip, tmp_path):
    path, _ = clip
    r = run_sample("opencv_detect", path, "-o", "boxes.mp4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{FRAMES} frames" in r.stdout
    seen = int(r.stdout.split("person in ")[1].split(",")[0].split()[0])
    assert seen >= 0.75 * FRAMES
    with av.open(str(tmp_path / "boxes.mp4")) as c:
        assert c.streams.video[0].average_rate == RATE
    before, after = decoded(path), decoded(tmp_path / "boxes.mp4")
    assert len(after) == FRAMES
    # boxes were drawn: some pixels changed far beyond re-encoding noise
    assert max((np.abs(a.astype(int) - b) > 100).mean() for a, b in zip(before, after,
                                                                        strict=True)) > 0.002


def test_a_missing_input_is_one_line(tmp_path):
    r = run_sample("count_per_second", tmp_path / "none.mp4", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == f"count_per_second: error: {tmp_path / 'none.mp4'}: no such file"
