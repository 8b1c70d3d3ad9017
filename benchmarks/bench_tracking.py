"""Tracker cost per frame at 10, 50 and 200 objects (issue 14's goal: <= 1 ms at 50).

Objects move on straight lines with box jitter and 5% missed detections; each frame also
carries as many low-score detections (ByteTrack's second association). Prints ms per frame for
vidstream's ByteTrack alone, with a line and a zone (the Tracker stage), and for Roboflow's
``trackers`` ByteTrack when it is installed (the oracle). Prints numbers; asserts nothing.

    PYTHONPATH=. python benchmarks/bench_tracking.py [--frames 300]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np

from vidstream import Detections, Frame
from vidstream.tracking import ByteTrack, Tracker, TrackerSettings


class _Pic:
    width, height = 1920, 1080


def scene(objects: int, frames: int, seed: int = 0) -> list[Detections]:
    rng = np.random.default_rng(seed)
    start = rng.uniform([50, 50], [1800, 950], (objects, 2))
    vel = rng.uniform(-5, 5, (objects, 2))
    size = rng.uniform([30, 60], [90, 180], (objects, 2))
    out = []
    for i in range(frames):
        keep = rng.random(objects) > 0.05
        c = (start + vel * i)[keep]
        wh = size[keep] * rng.uniform(0.9, 1.1, (keep.sum(), 2))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
        scores = rng.uniform(0.4, 0.6, len(boxes))
        low_c = rng.uniform([0, 0], [1920, 1080], (objects, 2))
        low = Detections(np.concatenate([low_c - 20, low_c + 20], axis=1),
                         rng.uniform(0.1, 0.4, objects), np.ones(objects, np.int64))
        out.append(Detections(boxes, scores, np.ones(len(boxes), np.int64), low=low))
    return out


def bench(objects: int, frames: int) -> dict[str, float]:
    data = scene(objects, frames)
    result: dict[str, float] = {}
    tracker = ByteTrack(TrackerSettings())
    t0 = time.perf_counter()
    for i, d in enumerate(data):
        tracker.update(d, i / 30)
    result["bytetrack"] = (time.perf_counter() - t0) / frames * 1000
    stage = Tracker(lines=["door:0.5,1,0.5,0"], zones=["z:0.1,0.1;0.5,0.1;0.5,0.5;0.1,0.5"])
    tb = Fraction(1, 30)
    fs = [Frame(i, i, tb, _Pic()).with_detections(d) for i, d in enumerate(data)]
    t0 = time.perf_counter()
    for f in fs:
        stage.process(f)
    result["stage+line+zone"] = (time.perf_counter() - t0) / frames * 1000
    try:
        import supervision as sv
        import trackers
    except ImportError:
        return result
    theirs = trackers.ByteTrackTracker(track_activation_threshold=0.4,
                                       high_conf_det_threshold=0.4,
                                       minimum_consecutive_frames=3, minimum_iou_threshold=0.2)
    svd = []
    for d in data:
        assert d.low is not None
        svd.append(sv.Detections(xyxy=np.concatenate([d.boxes, d.low.boxes]),
                                 confidence=np.concatenate([d.scores, d.low.scores]),
                                 class_id=np.zeros(len(d) + len(d.low), int)))
    t0 = time.perf_counter()
    for d in svd:
        theirs.update(d)
    result["trackers"] = (time.perf_counter() - t0) / frames * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print(f"ms per frame ({args.frames} frames, plus as many low-score detections)")
    for n in (10, 50, 200):
        r = bench(n, args.frames)
        print(f"{n:4d} objects: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))


if __name__ == "__main__":
    main()
