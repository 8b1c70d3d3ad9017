"""Detector stage details that need no real model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidstream import ConfigError, Detector, Frame
from vidstream.detector import as_predictor
from vidstream.predictor import Predictor


class LetterboxModel(Predictor):
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


def boxes(n):
    return {"detection_boxes": np.tile([[[0.1, 0.2, 0.5, 0.6]]], (n, 1, 1)),
            "detection_scores": np.full((n, 1), 0.9), "detection_classes": np.ones((n, 1))}


class Overlaps(Predictor):
    """Records whether two calls ever ran at once (they sleep, so unserialised ones do)."""

    def __init__(self, thread_safe):
        self.thread_safe = thread_safe
        self.active = 0
        self.most = 0
        self.guard = threading.Lock()

    def __call__(self, feed):
        with self.guard:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.02)
        with self.guard:
            self.active -= 1
        return boxes(len(feed["inputs"]))


def hammer(detectors, calls=5):
    image = np.zeros((16, 16, 3), np.uint8)
    threads = [threading.Thread(target=lambda d=d: [d.detect(image) for _ in range(calls)])
               for d in detectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("shared", ["one detector", "two detectors"])
def test_a_predictor_that_is_not_thread_safe_is_called_by_one_thread_at_a_time(shared):
    model = Overlaps(thread_safe=False)
    one = Detector(model)
    hammer([one, one] if shared == "one detector" else [one, Detector(model)])
    assert model.most == 1


def test_a_thread_safe_predictor_is_not_serialised():
    # the control for the test above: the fake does see overlapping calls when allowed
    model = Overlaps(thread_safe=True)
    hammer([Detector(model), Detector(model)])
    assert model.most == 2


def test_a_plain_callable_gets_the_protocols_defaults():
    p = as_predictor(lambda feed: boxes(len(feed["inputs"])))
    assert isinstance(p, Predictor)
    assert (p.input_size, p.resize, p.max_batch, p.thread_safe) == (None, "stretch", None, True)


def test_a_half_declared_predictor_is_refused_not_half_used():
    class Half:
        input_size = (64, 64)

        def __call__(self, feed):
            return boxes(1)

    with pytest.raises(TypeError, match="declares input_size but not .*subclass"):
        Detector(Half()).open()


def test_settings_errors_name_the_api_parameter():
    with pytest.raises(ConfigError) as e:
        Detector(LetterboxModel(), classes=["unicorn"])
    assert e.value.param == "classes" and "--" not in str(e.value)
    with pytest.raises(ConfigError, match="known backends: auto, tf, tflite") as e:
        Detector(backend="onnx")
    assert e.value.param == "backend"


class PersonAndCup(Predictor):
    """A person at 0.9 and a cup at 0.3 (as the default model scores the example clip's)."""

    def __call__(self, feed):
        n = len(feed["inputs"])
        return {"detection_boxes": np.tile([[[0.1, 0.1, 0.9, 0.5], [0.6, 0.6, 0.8, 0.8]]],
                                           (n, 1, 1)),
                "detection_scores": np.tile([[0.9, 0.3]], (n, 1)),
                "detection_classes": np.tile([[1.0, 47.0]], (n, 1))}


@pytest.mark.parametrize(("classes", "labels"), [(None, ("person", "cup")),
                                                 (["person"], ("person",)),
                                                 (["cup"], ("cup",)),
                                                 (["car"], ())])
def test_classes_keeps_only_the_named_classes(classes, labels):
    image = np.zeros((64, 64, 3), np.uint8)
    assert Detector(PersonAndCup(), threshold=0.25, classes=classes).detect(image).labels == labels
