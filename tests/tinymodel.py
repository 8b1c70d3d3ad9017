"""A tiny, exact detector the tests export themselves: it finds pure red squares.

It has the TF2 Object Detection API signature (``input_tensor`` uint8 in; ``detection_boxes``,
``detection_scores``, ``detection_classes``, ``num_detections`` out), one detection per image:
the bounding box of the red pixels, class 3 (car), score 0.9; nothing when there is no red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RED = (230, 20, 20)


def build_module():
    import tensorflow as tf

    class RedSquare(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")]
        )
        def __call__(self, input_tensor):
            x = tf.cast(input_tensor, tf.int32)
            mask = (x[..., 0] > 180) & (x[..., 1] < 80) & (x[..., 2] < 80)
            b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
            rows, cols = tf.reduce_any(mask, axis=2), tf.reduce_any(mask, axis=1)

            def first_last(v, n):
                idx = tf.range(n)[None]
                lo = tf.reduce_min(tf.where(v, idx, n), axis=1)
                hi = tf.reduce_max(tf.where(v, idx, -1), axis=1)
                return tf.cast(lo, tf.float32), tf.cast(hi + 1, tf.float32)

            y1, y2 = first_last(rows, h)
            x1, x2 = first_last(cols, w)
            found = tf.reduce_any(rows, axis=1)
            hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
            boxes = tf.stack([y1 / hf, x1 / wf, y2 / hf, x2 / wf], axis=-1)
            boxes = tf.where(found[:, None], boxes, tf.zeros_like(boxes))[:, None, :]
            return {
                "detection_boxes": boxes,
                "detection_scores": tf.where(found, 0.9, 0.0)[:, None],
                "detection_classes": tf.fill([b, 1], 3.0),
                "num_detections": tf.cast(found, tf.float32),
            }

    return RedSquare()


def export_red_square_model(path: Path) -> Path:
    import tensorflow as tf

    module = build_module()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def red_square_frames(count: int, width: int = 320, height: int = 240, size: int = 40):
    """Frames with a red square moving left to right; yields (image, box x1 y1 x2 y2)."""
    for i in range(count):
        img = np.full((height, width, 3), 128, np.uint8)
        x = (i * 7) % (width - size)
        y = (height - size) // 2
        img[y : y + size, x : x + size] = RED
        yield img, (x, y, x + size, y + size)


BLUE = (20, 20, 230)


def build_tripwire_module():
    """The red-square model, except that it fails (InvalidArgumentError) on an image that is
    more than 5% pure blue: a model that raises at a frame the test chooses."""
    import tensorflow as tf

    inner = build_module()

    class Tripwire(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")]
        )
        def __call__(self, input_tensor):
            x = tf.cast(input_tensor, tf.int32)
            blue = (x[..., 2] > 180) & (x[..., 0] < 80) & (x[..., 1] < 80)
            share = tf.reduce_mean(tf.cast(blue, tf.float32))
            check = tf.debugging.Assert(share < 0.05, ["tripwire: a blue frame"])
            with tf.control_dependencies([check]):
                return self.inner(tf.identity(input_tensor))

    return Tripwire()


def export_tripwire_model(path: Path) -> Path:
    import tensorflow as tf

    module = build_tripwire_module()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path
