"""Tracking and counting (issue 14): ByteTrack, lines, zones, the per-stream tracker stage.

Synthetic trajectories with known ground truth; deterministic (no timing assertions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np
import pytest

from vidstream import ArraySource, ConfigError, Detections, Detector, Frame, Pipeline
from vidstream.tracking import (
    ByteTrack,
    Line,
    StreamCounter,
    Tracker,
    TrackerSettings,
    Zone,
    iou_matrix,
    parse_line,
    parse_zone,
)

W, H = 1920, 1080
FPS = 30.0


def dets(boxes: Sequence[Sequence[float]], scores: Sequence[float] | float = 0.5,
         classes: Sequence[int] | int = 1, low: Detections | None = None) -> Detections:
    n = len(boxes)
    s = np.full(n, scores, np.float32) if np.isscalar(scores) else np.asarray(scores)
    c = np.full(n, classes) if np.isscalar(classes) else np.asarray(classes)
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    d = Detections(b, s, c)
    return Detections(d.boxes, d.scores, d.class_ids, d.labels, low=low)


def person(cx: float, cy: float = 540, w: float = 340, h: float = 700) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def jittery(cx: float, i: int, cy: float = 540) -> list[float]:
    """CenterNet's box of a walking person: width jumps 300 <-> 380 px, left edge steady,
    so the centre wobbles by 40 px from frame to frame."""
    w = 300 if i % 2 else 380
    x1 = cx - 170
    return [x1, cy - 350, x1 + w, cy + 350]


def frame(i: int, detections: Detections | None, stream: int = 0, t: float | None = None,
          size: tuple[int, int] = (W, H)) -> Frame:
    """A frame (tiny picture: the tracker reads only the size and time) at time ``t``."""
    pts = round((t if t is not None else i / FPS) * 90000)
    return Frame(i, pts, Fraction(1, 90000), _Pic(*size), stream=stream).with_detections(
        detections)


class _Pic:
    """A stand-in picture with a size and no pixels (the tracker never reads pixels)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height


def run(tracker: Tracker, per_frame: Iterable[Detections | None], stream: int = 0,
        times: Iterable[float] | None = None, size: tuple[int, int] = (W, H)) -> list[Frame]:
    ts = list(times) if times is not None else None
    return [tracker.process(frame(i, d, stream, ts[i] if ts else None, size))
            for i, d in enumerate(per_frame)]


def ids_of(frames: Iterable[Frame]) -> set[int]:
    return {int(t) for f in frames for t in f.detections.track_ids}


def events(frames: Iterable[Frame]) -> list[dict]:
    return [e.to_json() for f in frames for e in f.events]


# a vertical line in the middle drawn upwards: "in" is left to right
DOOR = "door:0.5,1,0.5,0"


# -- Detections and the detector ----------

def test_detections_track_ids_are_validated_written_and_iterated():
    d = dets([person(500), person(900)])
    assert d.track_ids is None and "track" not in d.to_json()[0]  # unchanged when absent
    assert next(iter(d)).track is None
    t = Detections(d.boxes, d.scores, d.class_ids, track_ids=np.array([17, -1]))
    assert [x["track"] for x in t.to_json()] == [17, None]
    assert [x.track for x in t] == [17, None]
    assert json.loads(json.dumps(t.to_json()))[0] == {
        "label": "person", "class_id": 1, "score": 0.5, "box": [330.0, 190.0, 670.0, 890.0],
        "track": 17}
    assert t.select(np.array([1])).track_ids.tolist() == [-1]
    with pytest.raises(ValueError, match=r"track_ids \(N,\) with N = 2"):
        Detections(d.boxes, d.scores, d.class_ids, track_ids=np.array([1]))
    with pytest.raises(ValueError, match="integer track_ids"):
        Detections(d.boxes, d.scores, d.class_ids, track_ids=np.array([1.5, 2.0]))


def _fake_model(feed):
    n = len(feed["inputs"])
    boxes = np.tile(np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6], [0.3, 0.3, 0.7, 0.7]],
                             np.float32), (n, 1, 1))
    return {"detection_boxes": boxes,
            "detection_scores": np.tile(np.array([0.9, 0.3, 0.05], np.float32), (n, 1)),
            "detection_classes": np.tile(np.array([1, 3, 1], np.float32), (n, 1)),
            "num_detections": np.full(n, 3, np.float32)}


def test_detector_keeps_low_scores_apart_only_when_asked():
    image = np.zeros((100, 200, 3), np.uint8)
    plain = Detector(_fake_model, threshold=0.4).detect(image)
    assert plain.scores.tolist() == pytest.approx([0.9]) and plain.low is None
    kept = Detector(_fake_model, threshold=0.4, track_floor=0.1).detect(image)
    assert kept.scores.tolist() == pytest.approx([0.9])  # what sinks see does not change
    assert kept.low is not None and kept.low.labels == ("car",)
    assert kept.low.scores.tolist() == pytest.approx([0.3])
    with pytest.raises(ConfigError, match="track floor"):
        Detector(_fake_model, track_floor=1.5)


# -- ByteTrack ----------

def test_only_confirmed_tracks_come_out_and_ids_start_at_one():
    tracker = ByteTrack(TrackerSettings(min_frames=3))
    out = [tracker.update(dets([person(300 + 10 * i)]), t=i / FPS) for i in range(5)]
    assert [o.track_ids.tolist() for o in out] == [[], [], [1], [1], [1]]
    assert tracker.next_id == 2


def test_flickering_false_detections_never_become_tracks():
    """Supervision #2578: unconfirmed tracks must not come out (nor be counted as one)."""
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    per_frame = []
    for i in range(120):  # each false box shows for 2 frames, then one appears elsewhere
        slot = (i // 2) * 7 % 20  # slots 85 px apart, boxes 60 px wide: never overlapping
        per_frame.append(dets([person(100 + 85 * slot, w=60, h=120)]))
    out = run(tracker, per_frame)
    assert ids_of(out) == set() and events(out) == []
    assert tracker.describe()["lines"]["door"]["in"] == 0


def test_activation_follows_the_detector_threshold():
    """CenterNet scores a visible person 0.4-0.55: with ByteTrack's usual 0.6 activation no
    track would start; by default the detector's own threshold is the activation threshold."""
    walk = [dets([person(300 + 10 * i)], scores=0.45) for i in range(10)]
    default = ByteTrack()
    assert default.update(walk[0], 0.0) is not None
    assert max(len(default.update(d, i / FPS)) for i, d in enumerate(walk[1:], 1)) == 1
    usual = ByteTrack(TrackerSettings(activation_threshold=0.6))
    assert all(len(usual.update(d, i / FPS)) == 0 for i, d in enumerate(walk))


def test_low_score_detections_keep_a_track_alive():
    """ByteTrack's second association: an occluded person scored 0.2 keeps its id."""
    tracker = ByteTrack(TrackerSettings(min_frames=2))
    seen = []
    for i in range(30):
        box = person(300 + 15 * i)
        d = dets([box]) if not 10 <= i < 20 else dets([], low=dets([box], scores=0.2))
        seen.append(tracker.update(d, i / FPS).track_ids.tolist())
    assert seen[1:] == [[1]] * 29  # the low-score frames come out too, with the same id


def test_ids_are_not_reused_while_a_track_is_lost_nor_after():
    tracker = ByteTrack(TrackerSettings(min_frames=2, lost_buffer_s=1.0))
    out = []
    for i in range(90):
        boxes = []
        if i < 20 or 35 <= i < 40:  # A walks, vanishes for 0.5 s, returns where predicted
            boxes.append(person(300 + 10 * i, cy=300, h=400))
        if 22 <= i < 40:  # B appears while A is lost
            boxes.append(person(1500, cy=700, h=400))
        if i >= 80:  # C appears after both ended (> 1 s unseen)
            boxes.append(person(900, cy=500, h=400))
        out.append((i, tracker.update(dets(boxes), i / FPS)))
    a = {int(t) for i, o in out if i < 20 or 35 <= i < 40
         for t, b in zip(o.track_ids, o.boxes, strict=True) if b[1] < 200}
    b = {int(t) for i, o in out if 22 <= i < 40 for t, bb in zip(o.track_ids, o.boxes, strict=True)
         if bb[0] > 1200}
    c = {int(t) for i, o in out if i >= 80 for t in o.track_ids}
    assert a == {1} and b == {2} and c == {3}


def test_lost_buffer_is_in_seconds_of_stream_time():
    """The same 0.75 s gap keeps the id at 60 fps and at 15 fps; 1.5 s ends it at both."""
    for fps in (15.0, 60.0):
        for gap_s, same in ((0.75, True), (1.5, False)):
            tracker = ByteTrack(TrackerSettings(min_frames=2, lost_buffer_s=1.0))
            ids = []
            n = int(4 * fps)
            for i in range(n):
                t = i / fps
                visible = not 1.0 <= t < 1.0 + gap_s
                box = person(300 + 100 * t)  # 100 px/s, whatever the rate
                ids += tracker.update(dets([box] if visible else []), t).track_ids.tolist()
            assert (set(ids) == {1}) is same, (fps, gap_s, set(ids))


def test_variable_frame_rate_predicts_by_timestamps():
    """Frames 1/30 s and 1/5 s apart: a fast object (600 px/s, box 200 px wide) moves 120 px
    in a long interval (IoU with its last box below 0.2); the prediction by time matches."""
    rng = np.random.default_rng(3)
    t, times = 0.0, []
    for _ in range(40):
        times.append(t)
        t += 1 / 30 if rng.random() < 0.7 else 1 / 5
    tracker = ByteTrack(TrackerSettings(min_frames=2))
    ids = [tracker.update(dets([person(100 + 600 * t, w=200, h=400)]), t).track_ids.tolist()
           for t in times]
    assert {i for x in ids for i in x} == {1}
    assert sum(1 for x in ids if x) >= 38


def test_iou_matrix():
    m = iou_matrix(np.array([[0, 0, 10, 10], [0, 0, 0, 0]]), np.array([[0, 0, 10, 10]]))
    assert m.tolist() == [[1.0], [0.0]]


# -- lines ----------

def walk_across(cxs: Iterable[float]) -> list[Detections]:
    return [dets([jittery(cx, i)]) for i, cx in enumerate(cxs)]


def test_one_crossing_each_way_despite_wobbling_boxes():
    """The wobble of CenterNet's boxes (40 px) counted 2 in + 2 out without hysteresis."""
    there = list(range(300, 1700, 20))
    path = walk_across(there + there[::-1])
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    out = run(tracker, path)
    line = tracker.describe()["lines"]["door"]
    assert (line["in"], line["out"]) == (1, 1)
    assert line["by_class"] == {"person": {"in": 1, "out": 1}}
    assert ids_of(out) == {1}
    evs = events(out)
    assert [(e["direction"], e["track"], e["label"]) for e in evs] == [
        ("in", 1, "person"), ("out", 1, "person")]
    assert evs[0]["time"] < evs[1]["time"]


def test_direction_convention():
    down = Tracker(TrackerSettings(min_frames=1), lines=["down:0.5,0,0.5,1"])
    run(down, walk_across(range(300, 1700, 20)))  # left to right across a line drawn down
    assert down.describe()["lines"]["down"]["out"] == 1
    horiz = Tracker(TrackerSettings(min_frames=1), lines=["h:0,0.5,1,0.5"])
    run(horiz, [dets([person(900, cy=100 + 15 * i, h=200)]) for i in range(60)])
    assert horiz.describe()["lines"]["h"]["in"] == 1  # downwards across a line drawn rightwards


def test_flicker_on_the_line_counts_nothing():
    """Supervision #2598: a track standing on the line, its box wobbling, counts nothing."""
    path = walk_across([960 + (25 if i % 3 else -25) for i in range(90)])
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    out = run(tracker, path)
    assert tracker.describe()["lines"]["door"]["in"] == 0 and events(out) == []
    no_margin = Tracker(TrackerSettings(min_frames=3), lines=[DOOR], margin=0.0)
    run(no_margin, path)
    assert no_margin.describe()["lines"]["door"]["in"] > 1  # what the margin prevents


def test_gaps_from_missed_detections_keep_one_count():
    cxs = list(range(300, 1700, 20))
    path = [d if not 30 <= i < 40 else dets([]) for i, d in enumerate(walk_across(cxs))]
    assert 30 <= cxs.index(960) < 40  # the gap is where it crosses
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    out = run(tracker, path)
    assert ids_of(out) == {1}
    assert tracker.describe()["lines"]["door"]["in"] == 1


def test_objects_crossing_together():
    """Three people abreast cross one way, two others the other way, at the same time."""
    rows_right = [200, 540, 880]
    rows_left = [370, 710]
    path = []
    for i in range(70):
        boxes = [person(300 + 20 * i, cy=y, w=120, h=150) for y in rows_right]
        boxes += [person(1700 - 20 * i, cy=y, w=120, h=150) for y in rows_left]
        classes = [1, 1, 3, 3, 1]
        path.append(dets(boxes, classes=classes))
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    out = run(tracker, path)
    line = tracker.describe()["lines"]["door"]
    assert (line["in"], line["out"]) == (3, 2)
    assert line["by_class"] == {"car": {"in": 1, "out": 1}, "person": {"in": 2, "out": 1}}
    assert ids_of(out) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("spec", ["exit:1,1,1,0", "exit:1919,1080,1919,0"])
def test_a_line_on_the_frame_edge_counts(spec):
    """Supervision #1838: the centre of a box cut by the border never reaches the border; the
    box is extended to the size the track had when whole, so leaving through the edge counts,
    and so does entering through the opposite edge (a line on the left border)."""
    path = []
    for i in range(80):
        x1, x2 = 1200 + 15 * i, 1540 + 15 * i
        if x1 > W - 0.3 * 340:  # less than 30% visible: the detector loses it
            break
        path.append(dets([[x1, 190, min(x2, W), 890]]))
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[spec, "enter:0,1,0,0"])
    run(tracker, path)
    assert tracker.describe()["lines"]["exit"]["in"] == 1
    entering = []
    for i in range(60):
        x1, x2 = -240 + 15 * i, 100 + 15 * i  # from 30% visible at the left edge
        entering.append(dets([[max(x1, 0), 190, x2, 890]]))
    tracker = Tracker(TrackerSettings(min_frames=3), lines=["enter:0,1,0,0"])
    run(tracker, entering)
    assert tracker.describe()["lines"]["enter"]["in"] == 1


def test_bottom_anchor_and_a_short_segment():
    counter = StreamCounter([Line("short", (0, 600), (500, 600))], anchor="bottom")
    for i in range(40):  # feet cross y=600 at x=900, beside the segment: nothing
        counter.update([1], [[850, 200 + 10 * i, 950, 400 + 10 * i]], ["person"], i / 30, W, H)
    for i in range(40):  # at x=300, on the segment: counts
        counter.update([2], [[250, 200 + 10 * i, 350, 400 + 10 * i]], ["person"], i / 30, W, H)
    assert counter.report()["lines"]["short"]["in"] == 1


# -- zones ----------

def test_zone_occupancy_entries_and_dwell():
    zone = "till:0.25,0.25;0.75,0.25;0.75,0.75;0.25,0.75"  # x 480..1440, y 270..810
    tracker = Tracker(TrackerSettings(min_frames=1), zones=[zone])
    per_frame, times = [], []
    for i in range(121):  # 4 s at 30 fps
        t = i / FPS
        a = 300 + 400 * t  # A walks in (x > 480 + margin) and out (x > 1440 + margin)
        boxes = [person(a, cy=540, w=100, h=200)]
        if t >= 2.0:  # B appears inside at 2 s and stays
            boxes.append(person(700, cy=400, w=100, h=200))
        per_frame.append(dets(boxes, classes=[1] + [3] * (len(boxes) - 1)))
        times.append(t)
    out = run(tracker, per_frame, times=times)
    z = tracker.describe()["zones"]["till"]
    assert z["occupancy"] == 1 and z["entries"] == 2
    assert z["by_class"]["car"]["occupancy"] == 1 and z["by_class"]["person"]["occupancy"] == 0
    evs = events(out)
    enter_a = next(e for e in evs if e["track"] == 1 and e["direction"] == "enter")
    exit_a = next(e for e in evs if e["track"] == 1 and e["direction"] == "exit")
    assert exit_a["dwell_s"] == pytest.approx(exit_a["time"] - enter_a["time"], abs=1e-3)
    # A: enters at x ~ 495 (t ~ 0.49 s), leaves at x ~ 1455 (t ~ 2.89 s): ~2.4 s
    assert exit_a["dwell_s"] == pytest.approx(2.4, abs=0.1)
    assert z["by_class"]["person"]["dwell_s"]["visits"] == 1
    # B: in progress, from 2.0 s to the last frame at 4.0 s
    assert z["by_class"]["car"]["dwell_s"]["max"] == pytest.approx(2.0, abs=0.05)
    assert z["dwell_s"]["max"] == pytest.approx(2.4, abs=0.1)


def test_a_track_that_ends_inside_a_zone_leaves_it():
    tracker = Tracker(TrackerSettings(min_frames=1, lost_buffer_s=0.5),
                      zones=["all:0,0;1,0;1,1;0,1"])
    path = [dets([person(900, w=100, h=200)]) if i < 30 else dets([]) for i in range(60)]
    out = run(tracker, path)
    z = tracker.describe()["zones"]["all"]
    assert z["occupancy"] == 0 and z["entries"] == 1
    assert z["dwell_s"]["max"] == pytest.approx(29 / FPS, abs=1e-3)
    assert [e["direction"] for e in events(out)] == ["enter", "exit"]


# -- many streams ----------

def test_many_streams_through_one_stage_keep_their_own_ids_and_counts():
    tracker = Tracker(TrackerSettings(min_frames=3), lines=[DOOR])
    there = list(range(300, 1700, 20))
    s0 = walk_across(there)  # stream 0: one crossing in
    s1 = [dets([jittery(1700 - cx + 300, i, cy=300), jittery(1700 - cx + 300, i, cy=800)])
          for i, cx in enumerate(there)]  # stream 1: two crossings out
    batches = []
    for i in range(len(there)):  # interleaved in batches, as the merge forms them
        batches.append([frame(i, s0[i], stream=0), frame(i, s1[i], stream=1)])
    out = [f for batch in batches for f in tracker.process_batch(batch)]
    assert ids_of(f for f in out if f.stream == 0) == {1}
    assert ids_of(f for f in out if f.stream == 1) == {1, 2}
    per = tracker.describe()["tracking"]["streams"]
    assert per["0"]["lines"]["door"]["in"] == 1 and per["0"]["lines"]["door"]["out"] == 0
    assert per["1"]["lines"]["door"]["out"] == 2 and per["1"]["tracks"] == 2
    assert tracker.describe_stream(1)["lines"]["door"]["in"] == 0


def test_tracker_in_a_multi_stream_pipeline():
    """The engine: two sources, a fake detector, the tracker, per-stream sinks."""
    def images(n):
        return [np.zeros((90, 160, 3), np.uint8) for _ in range(n)]

    def detect(f: Frame) -> Frame:  # one object walking right, faster in stream 1
        speed = 4 if f.stream == 0 else 8
        x = 10 + speed * f.index
        return f.with_detections(dets([[x, 30, x + 30, 70]]))

    got: dict[int, list[Frame]] = {0: [], 1: []}
    tracker = Tracker(TrackerSettings(min_frames=2), lines=["mid:0.5,1,0.5,0"])
    summary = Pipeline([ArraySource(images(30)), ArraySource(images(15))], [detect, tracker],
                       lambda i: [got[i].append]).run()
    streams = summary.details["tracking"]["streams"]
    assert streams["0"]["lines"]["mid"]["in"] == 1 and streams["1"]["lines"]["mid"]["in"] == 1
    assert ids_of(got[0]) == {1} and ids_of(got[1]) == {1}
    assert sum(len(f.events) for f in got[0] + got[1]) == 2
    json.dumps(summary.to_dict())  # the counts are JSON


def test_timestamps_that_jump_back_do_not_stall_the_tracker():
    tracker = Tracker(TrackerSettings(min_frames=1))
    times = [i / FPS for i in range(30)] + [i / FPS for i in range(30)]  # a reconnect
    out = run(tracker, [dets([person(300 + 5 * i)]) for i in range(60)], times=times)
    assert ids_of(out) == {1}


# -- parsing ----------

def test_parse_lines_and_zones():
    assert parse_line("door:100,0,100,1080") == Line("door", (100, 0), (100, 1080), False)
    assert parse_line("door:0.5,0,0.5,1").relative
    assert parse_line("a:0,0,1,1").in_pixels(W, H).end == (W, H)
    z = parse_zone("shop:0,0; 0.5,0; 0.5,0.5;")
    assert z == Zone("shop", ((0, 0), (0.5, 0), (0.5, 0.5)), True)


@pytest.mark.parametrize("text, message", [
    ("door", "expected NAME:x1,y1,x2,y2"),
    (":1,2,3,4", "expected NAME:x1,y1,x2,y2"),
    ("do or:1,2,3,4", "the name may hold"),
    ("door:1,2,3", "expected 4 numbers"),
    ("door:1,2,x,4", "is not a list of numbers"),
    ("door:1,2,1,2", "start and end are the same point"),
    ("door:nan,0,1,1", "finite"),
])
def test_bad_lines(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_line(text)
    assert err.value.param == "lines"


@pytest.mark.parametrize("text, message", [
    ("zone:0,0;1,1", "at least 3 points"),
    ("zone:0,0;1,1;2,2", "no area"),
    ("zone:0,0;1;2,2", "expected points x,y"),
    ("zone", "expected NAME:x,y;x,y;x,y"),
])
def test_bad_zones(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_zone(text)
    assert err.value.param == "zones"


def test_bad_settings():
    with pytest.raises(ConfigError, match="names must differ"):
        Tracker(lines=["a:0,0,1,1", "a:1,1,0,0"])
    with pytest.raises(ConfigError, match="anchor"):
        Tracker(anchor="feet")
    with pytest.raises(ConfigError, match="activation threshold"):
        TrackerSettings(activation_threshold=0.05)
    with pytest.raises(ConfigError, match="min_frames"):
        TrackerSettings(min_frames=0)


def test_defaults_come_from_the_settings():
    from vidstream import DEFAULTS

    s = TrackerSettings()
    assert (s.floor, s.lost_buffer_s, s.min_iou, s.min_frames, s.activation_threshold) == (
        DEFAULTS.track_floor, DEFAULTS.track_buffer_s, DEFAULTS.track_min_iou,
        DEFAULTS.track_min_frames, DEFAULTS.track_activation)


# -- the oracle ----------

def _scene(seed: int = 0, frames: int = 150, objects: int = 8):
    """Objects on straight paths with box jitter and missed detections; ground-truth ids."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([100, 100], [1700, 900], (objects, 2))
    vel = rng.uniform(-6, 6, (objects, 2))
    size = rng.uniform([80, 160], [160, 320], (objects, 2))
    out = []
    for i in range(frames):
        boxes, gt, scores = [], [], []
        for k in range(objects):
            if rng.random() < 0.08:  # missed
                continue
            c = start[k] + vel[k] * i
            w, h = size[k] * rng.uniform(0.92, 1.08, 2)
            boxes.append([c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2])
            gt.append(k)
            scores.append(rng.uniform(0.4, 0.6))
        out.append((np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                    gt))
    return out


def _fragments(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """(ground-truth objects with more than one id, ids covering more than one object)."""
    by_gt: dict[int, set[int]] = {}
    by_id: dict[int, set[int]] = {}
    for g, t in pairs:
        by_gt.setdefault(g, set()).add(t)
        by_id.setdefault(t, set()).add(g)
    return (sum(len(v) > 1 for v in by_gt.values()), sum(len(v) > 1 for v in by_id.values()))


def test_id_continuity_matches_trackers_bytetrack():
    trackers = pytest.importorskip("trackers")
    sv = pytest.importorskip("supervision")
    scene = _scene()
    ours = ByteTrack(TrackerSettings(min_frames=2, min_iou=0.1))
    theirs = trackers.ByteTrackTracker(
        lost_track_buffer=30, frame_rate=30, track_activation_threshold=0.4,
        minimum_consecutive_frames=2, minimum_iou_threshold=0.1, high_conf_det_threshold=0.4)
    ours_pairs, theirs_pairs = [], []
    for i, (boxes, scores, gt) in enumerate(scene):
        o = ours.update(Detections(boxes, scores, np.ones(len(gt), np.int64)), i / FPS)
        for box, tid in zip(o.boxes, o.track_ids, strict=True):
            ours_pairs.append((gt[int(np.argmax(iou_matrix(box[None], boxes)[0]))], int(tid)))
        r = theirs.update(sv.Detections(xyxy=boxes.reshape(-1, 4), confidence=scores,
                                        class_id=np.zeros(len(gt), int)))
        for box, tid in zip(r.xyxy, r.tracker_id, strict=True):
            if tid >= 0:
                theirs_pairs.append((gt[int(np.argmax(iou_matrix(box[None], boxes)[0]))],
                                     int(tid)))
    assert _fragments(ours_pairs) == (0, 0)  # one id per object, one object per id
    assert _fragments(ours_pairs) <= _fragments(theirs_pairs)
    # both report (almost) the same detections as tracked
    assert abs(len(ours_pairs) - len(theirs_pairs)) <= 0.02 * len(theirs_pairs)
