"""A test double for the model: finds the red square with numpy, no TensorFlow.

It can be slow (``delay`` seconds per frame) and can raise at a chosen frame. Run as a script
it is the ``vidstream`` command with this double in place of every model, so signal tests
start in a second rather than the several TensorFlow takes::

    python tests/fakemodel.py --delay 0.05 -- detect clip.mp4 -o out.mp4
"""

from __future__ import annotations

import argparse
import time

import numpy as np


class Exploded(RuntimeError):
    pass


class RedSquares:
    """Detects pure red squares (class 3, score 0.9); raises :class:`Exploded` at ``fail_at``."""

    def __init__(self, fail_at: int | None = None, delay: float = 0.0):
        self.fail_at = fail_at
        self.delay = delay
        self.calls = 0
        self.raised_at: float | None = None

    def __call__(self, inputs):
        images = np.asarray(inputs["inputs"])
        n = images.shape[0]
        if self.fail_at is not None and self.calls <= self.fail_at < self.calls + n:
            self.raised_at = time.monotonic()
            raise Exploded("the model exploded")
        if self.delay:
            time.sleep(self.delay * n)
        self.calls += n
        boxes = np.zeros((n, 1, 4), np.float32)
        scores = np.zeros((n, 1), np.float32)
        for i, img in enumerate(images):
            red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
            ys, xs = np.nonzero(red)
            if len(xs):
                h, w = red.shape
                boxes[i, 0] = ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w
                scores[i, 0] = 0.9
        return {"detection_boxes": boxes, "detection_scores": scores,
                "detection_classes": np.full((n, 1), 3.0, np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per frame")
    parser.add_argument("--fail-at", type=int, help="raise at this frame")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then vidstream arguments")
    ns = parser.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args

    from vidstream import cli, detector

    def load_predictor(*args, **kwargs):  # whatever model was asked for
        return RedSquares(ns.fail_at, ns.delay)

    detector.load_predictor = load_predictor
    import sys

    sys.argv = ["vidstream", *args]
    cli.run()


if __name__ == "__main__":
    main()
