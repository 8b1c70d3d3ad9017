"""Use vidstream's stages alone: OpenCV reads the frames, vidstream detects and writes.

    python samples/opencv_detect.py clip.mp4 -o clip-opencv.mp4

No pipeline here: ``Detector.detect`` takes any RGB image (from OpenCV, imageio, a camera SDK)
and returns its detections; ``VideoWriter.write`` draws them and encodes the frame. Both are
context managers: the model loads on entry, and the video is finalized on exit, also after an
error. OpenCV gives BGR pictures, so they are converted to RGB first.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import cv2

from vidstream import Detector, VideoWriter, VidstreamError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Detect objects in frames read by OpenCV.")
    parser.add_argument("input", help="anything cv2.VideoCapture opens")
    parser.add_argument("-o", "--output", help="video to write (default: INPUT-opencv.mp4)")
    args = parser.parse_args(argv)
    output = args.output or f"{Path(args.input).stem}-opencv.mp4"

    capture = cv2.VideoCapture(args.input)
    if not capture.isOpened():
        sys.exit(f"opencv_detect: error: {args.input}: OpenCV cannot open it")
    seen: Counter[str] = Counter()
    try:
        with Detector() as detector, VideoWriter(output, rate=capture.get(cv2.CAP_PROP_FPS)) as out:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                detections = detector.detect(rgb)
                out.write(rgb, detections)
                seen.update(set(detections.labels))
    except VidstreamError as e:
        sys.exit(f"opencv_detect: error: {e}")
    finally:
        capture.release()
    found = ", ".join(f"{label} in {n}" for label, n in seen.most_common()) or "nothing"
    print(f"wrote {output}: {out.frames_written} frames; {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
