"""Count what crosses a line: vehicles over a road line, people through a door.

    python samples/count_line.py traffic.mp4 --line road:0,0.7,1,0.7
    python samples/count_line.py door.mp4 --line door:0.5,1,0.5,0 --classes person -o out.mp4

Each crossing prints a line with the running count as it happens; the annotated video (with
``-o``) shows the boxes with their track ids and the line with its counts. A line is
``NAME:x1,y1,x2,y2`` in pixels, or in fractions of the frame when every value is in [0, 1].
Crossing it from its left to its right (looking from x1,y1 towards x2,y2) counts as ``in``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidstream import Detector, Pipeline, Sink, VideoSource, VideoWriter, VidstreamError
from vidstream.annotate import Annotator
from vidstream.settings import DEFAULTS
from vidstream.tracking import Tracker, parse_line


class RunningCount(Sink):
    """Prints each crossing with the totals so far."""

    name = "count"

    def __init__(self, out: Any = sys.stdout) -> None:
        self.out = out
        self.totals: dict[str, dict[str, int]] = {}

    def process(self, frame: Any) -> None:
        for e in frame.events:
            if e.kind != "line":
                continue
            totals = self.totals.setdefault(e.name, {"in": 0, "out": 0})
            totals[e.direction] += 1
            print(f"{e.time:7.2f} s  {e.name}  {e.direction:3s}  {e.label} #{e.track}  "
                  f"(in {totals['in']}, out {totals['out']})", file=self.out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="video file or URL")
    parser.add_argument("--line", action="append", required=True, metavar="NAME:x1,y1,x2,y2",
                        help="a counting line (repeatable)")
    parser.add_argument("--classes", metavar="A,B", default="car,bus,truck,motorcycle",
                        help="classes to count (default: vehicles)")
    parser.add_argument("--threshold", type=float, default=DEFAULTS.threshold)
    parser.add_argument("-o", "--output", help="annotated video to write")
    args = parser.parse_args(argv)
    try:
        lines = [parse_line(text) for text in args.line]
        detector = Detector(threshold=args.threshold, classes=args.classes.split(","),
                            track_floor=DEFAULTS.track_floor)
        counter = RunningCount()
        sinks: list[Any] = [counter]
        if args.output:
            sinks.append(VideoWriter(args.output, annotator=Annotator(lines=lines)))
        summary = Pipeline(VideoSource(args.input), [detector, Tracker(lines=lines)],
                           sinks).run()
    except VidstreamError as e:
        print(f"count_line: error: {e}", file=sys.stderr)
        return 1
    for name, c in summary.details.get("lines", {}).items():
        by_class = ", ".join(f"{k} {v['in']}/{v['out']}" for k, v in c["by_class"].items())
        print(f"{name}: in {c['in']}, out {c['out']}" + (f" ({by_class})" if by_class else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
