"""Count objects per class per second of video, into a CSV.

    python samples/count_per_second.py traffic.mp4 -o traffic-per-second.csv

One row per second of video and class seen in it: ``second,class,max,mean``. Without tracking,
one car shows up in every frame it stays in view, so rather than summing detections each row
gives the most objects of that class seen in any one frame of that second (``max``) and the
average per frame (``mean``). Seconds where nothing was found have no rows.

The counting is a custom stage written as a small class: ``open`` once before the first frame,
``process`` for every frame, ``close`` at the end (also after an error).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from vidstream import Detector, Pipeline, Sink, VideoSource, VidstreamError


class PerSecondCounts(Sink):
    name = "per-second"

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, info=None) -> None:
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 (closed in close())
        self.csv = csv.writer(self.file)
        self.csv.writerow(["second", "class", "max", "mean"])
        self.second, self.frames, self.counts = None, 0, {}

    def process(self, frame):
        second = int(frame.time)
        if second != self.second:
            self.write_second()
            self.second, self.frames, self.counts = second, 0, {}
        self.frames += 1
        for label, n in frame.detections.count_by_label().items():
            self.counts.setdefault(label, []).append(n)
        return frame

    def write_second(self) -> None:
        for label, counts in sorted(self.counts.items()):
            self.csv.writerow([self.second, label, max(counts),
                               round(sum(counts) / self.frames, 2)])

    def close(self) -> None:
        self.write_second()
        self.file.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Count objects per class per second into a CSV.")
    parser.add_argument("input", help="video file or URL")
    parser.add_argument("-o", "--output", help="CSV to write (default: INPUT-per-second.csv)")
    parser.add_argument("--threshold", type=float, default=0.4, help="minimum score to count")
    args = parser.parse_args(argv)
    output = args.output or f"{Path(args.input).stem}-per-second.csv"

    pipeline = Pipeline(VideoSource(args.input), [Detector(threshold=args.threshold)],
                        [PerSecondCounts(output)])
    try:
        summary = pipeline.run()
    except VidstreamError as e:
        sys.exit(f"count_per_second: error: {e}")
    print(f"wrote {output}: {summary.frames} frames at {summary.fps:.1f} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
