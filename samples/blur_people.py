"""Privacy filter: blur every person in a video.

    python samples/blur_people.py street.mp4 -o street-blurred.mp4

The detector looks for people only; ``blur_people``, a plain function used as a stage, blurs
each person's box (a little enlarged) and hands on the frame with its new picture
(``frame.with_image``). Detections flicker, and one missed frame must not show a face, so it
also blurs where people were in the last few frames. The video is written without boxes, with
the input's frame rate, timestamps and audio. The threshold is low on purpose: for privacy,
blurring something that is not a person is better than missing someone.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

import cv2

from vidstream import Detector, Pipeline, VideoSource, VideoWriter, VidstreamError

MARGIN = 0.1  # enlarge each box by 10% on every side: boxes are rarely exact
CELLS = 12  # detail left across the longer side of a box: no face survives this


def blur(image, box) -> None:
    """Blur ``box`` of ``image`` in place: shrink to a few cells, smooth, scale back."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
    x1, y1 = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    x2, y2 = min(width, int(x2 + dx) + 1), min(height, int(y2 + dy) + 1)
    if x2 <= x1 or y2 <= y1:
        return
    w, h = x2 - x1, y2 - y1
    scale = CELLS / max(w, h)
    small = cv2.resize(image[y1:y2, x1:x2], (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    image[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def person_blur(hold: int = 5):
    """The stage: a function that blurs every person seen in the last ``hold`` frames."""
    recent = deque(maxlen=hold)  # person boxes of the last frames

    def blur_people(frame):
        recent.append([person.box for person in frame.detections])
        image = frame.image[0].copy()  # RGB, H x W x 3
        for boxes in recent:
            for box in boxes:
                blur(image, box)
        return frame.with_image(image)

    return blur_people


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Blur every person in a video.")
    parser.add_argument("input", help="video file or URL")
    parser.add_argument("-o", "--output", help="video to write (default: INPUT-blurred.mp4)")
    parser.add_argument("--threshold", type=float, default=0.3, help="minimum person score")
    parser.add_argument("--hold", type=int, default=5,
                        help="also blur where people were in this many past frames")
    args = parser.parse_args(argv)
    output = args.output or f"{Path(args.input).stem}-blurred.mp4"

    pipeline = Pipeline(
        VideoSource(args.input),
        [Detector(classes=["person"], threshold=args.threshold), person_blur(args.hold)],
        [VideoWriter(output, annotate=False)],
    )
    try:
        summary = pipeline.run()
    except VidstreamError as e:
        sys.exit(f"blur_people: error: {e}")
    print(f"wrote {output}: {summary.frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
