"""Detector stage details that need no real model."""

from __future__ import annotations

import numpy as np

from vidstream import Detector, Frame


class LetterboxModel:
    """A stand-in predictor that, like the default model, takes letterboxed 64x64 inputs."""

    input_size = (64, 64)
    resize = "letterbox"
    max_batch = None

    def __init__(self):
        self.shapes = []

    def __call__(self, feed):
        images = feed["inputs"]
        self.shapes.append(images.shape)
        n = len(images)
        return {"detection_boxes": np.tile([[[0.1, 0.2, 0.5, 0.6]]], (n, 1, 1)),
                "detection_scores": np.full((n, 1), 0.9), "detection_classes": np.ones((n, 1)),
                "num_detections": np.ones(n)}


def test_a_batch_of_frames_of_different_sizes_is_split_by_shape():
    # regression: a resolution change inside one batch gave two fitted sizes to concatenate
    model = LetterboxModel()
    det = Detector(model, batch_size=3)
    det.open()
    frames = [Frame.from_array(np.zeros(shape, np.uint8), index=i)
              for i, shape in enumerate([(90, 160, 3), (90, 160, 3), (120, 120, 3)])]
    out = det.process_batch(frames)
    assert [f.index for f in out] == [0, 1, 2]
    assert model.shapes == [(2, 36, 64, 3), (1, 64, 64, 3)]
    assert out[2].detections.boxes[0].tolist() == [24.0, 12.0, 72.0, 60.0]
