"""The Python API as a developer meets it: the README's examples, the docstrings, and each
stage used alone."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import pkgutil
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from make_clip import make_clip

import vidstream
from vidstream import (
    ArraySource,
    Detections,
    DetectionsWriter,
    Detector,
    Frame,
    OutputError,
    Pipeline,
    Stage,
    StageError,
    VideoSource,
    VideoWriter,
)

ROOT = Path(__file__).resolve().parent.parent


def probe(path: Path) -> tuple[int, int, int, Fraction, list[float]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [f.time for f in c.decode(video=0)]
        return len(times), v.width, v.height, v.average_rate, times


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def workdir(centernet, tmp_path_factory) -> Path:
    """A directory like the repository root holding ``clip.mp4``: what the examples assume
    (12 frames, 640x360, 30000/1001 fps, the astronaut and the cup)."""
    d = tmp_path_factory.mktemp("api")
    make_clip(d / "clip.mp4", scene="photos", width=640, height=360, count=12)
    shutil.copytree(ROOT / "pipelines", d / "pipelines")
    return d


# -- the README ---------------------------------------------------------------------------------
def readme_api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_has_an_api_walkthrough():
    blocks = readme_api_blocks()
    assert len(blocks) >= 6
    text = "\n".join(blocks)
    for name in ("Pipeline(", "run()", "for frame in Pipeline", "class ", "(Stage)",
                 "StageError", "detector.detect(", ".write("):
        assert name in text, name


def test_readme_api_examples_run(workdir, monkeypatch, no_thread_leak):
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": "readme"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in readme_api_blocks():
            exec(compile(block, "README.md", "exec"), namespace)
    printed = out.getvalue()
    # what each example says it does
    assert "12 frames at" in printed
    assert re.search(r"frame 0 at 0\.00 s: person 0\.\d\d at \(\d+, \d+\)-\(\d+, \d+\)", printed)
    assert (workdir / "clip-detected.mp4").exists()
    assert len((workdir / "clip.jsonl").read_text().splitlines()) == 12
    kept = int(re.search(r"(\d+) frames with someone in them", printed).group(1))
    assert 8 <= kept <= 12 and probe(workdir / "people-only.mp4")[0] == kept
    assert "input: 640x360 at 30000/1001 fps" in printed and "12 frames darkened" in printed
    dark, original = decoded(workdir / "dark.mp4"), decoded(workdir / "clip.mp4")
    assert abs(dark[0].mean() - original[0].mean() / 2) < 3
    assert "stage 'check' at frame 3: ValueError: frame 3 looks wrong" in printed
    people = re.search(r"people per second: \{0: (\d+)\}", printed)  # 12 frames: second 0
    assert people and 8 <= int(people.group(1)) <= 12
    assert "stream 0: ended, 12 frames" in printed and "stream 1: ended, 5 frames" in printed
    assert probe(workdir / "clip-stream0.mp4")[0] == 12
    assert probe(workdir / "clip-stream1.mp4")[0] == 5
    assert "ValueError('frame 3 looks wrong') check 3" in printed
    assert probe(workdir / "partial.mp4")[0] == 3
    assert "12 frames written; last: (" in printed
    n, w, h, rate, _ = probe(workdir / "opencv.mp4")
    assert (n, w, h, rate) == (12, 640, 360, Fraction(30000, 1001))
    assert "20 frames, brightness 0 .. 190" in printed


# -- docstrings ---------------------------------------------------------------------------------
MODULES = sorted(
    ["vidstream"] + [m.name for m in pkgutil.walk_packages(vidstream.__path__, "vidstream.")
                     if not m.name.rsplit(".", 1)[-1].startswith("_")]
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in finder.find(mod, module):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()


def test_the_api_modules_have_runnable_examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    for module in ("vidstream", "vidstream.pipeline", "vidstream.detector", "vidstream.sinks",
                   "vidstream.sources", "vidstream.frames"):
        examples = [e for t in finder.find(importlib.import_module(module))
                    for e in t.examples if not e.options.get(doctest.SKIP)]
        assert len(examples) >= 3, module


def test_the_public_api_is_exported():
    for name in ("Pipeline", "Stage", "FunctionStage", "VideoSource", "ArraySource", "Detector",
                 "VideoWriter", "DetectionsWriter", "ClassCounter", "Frame", "Detections",
                 "StageError", "VidstreamError", "load_pipeline_file"):
        assert name in vidstream.__all__ and getattr(vidstream, name)


# -- custom stages --------------------------------------------------------------------------------
def test_a_custom_stage_that_raises_stops_the_pipeline_with_its_error(workdir, tmp_path,
                                                                        no_thread_leak):
    class Broken(ValueError):
        pass

    seen = []

    def explode(frame):
        seen.append(frame.index)
        if frame.index == 5:
            raise Broken("no good")
        return frame

    video, lines = tmp_path / "v.mp4", tmp_path / "d.jsonl"
    pipeline = Pipeline(VideoSource(workdir / "clip.mp4"), [Detector(), explode],
                        [VideoWriter(video), DetectionsWriter(lines)])
    with pytest.raises(StageError) as err:
        pipeline.run()
    assert isinstance(err.value.__cause__, Broken)
    assert (err.value.stage, err.value.frame) == ("explode", 5)
    assert str(err.value) == "stage 'explode' at frame 5: Broken: no good"
    assert seen == [0, 1, 2, 3, 4, 5]  # nothing after the failing frame
    # the frames that passed the stage were written, and the video is finalized
    assert probe(video)[0] == 5
    assert len(lines.read_text().splitlines()) == 5
    assert pipeline.summary().error == "stage 'explode' at frame 5: Broken: no good"


def test_a_stage_class_that_raises_in_open_or_close_is_reported(no_thread_leak):
    class FailsToOpen(Stage):
        name = "opener"

        def open(self, info):
            raise OSError("device busy")

        def process(self, frame):
            return frame

    closed = []

    class FailsToClose(Stage):
        name = "closer"

        def process(self, frame):
            return frame

        def close(self):
            closed.append(True)
            raise RuntimeError("flush failed")

    with pytest.raises(OSError, match="device busy"):
        Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)] * 3), [FailsToOpen()]).run()
    with pytest.raises(StageError, match="stage 'closer'.*flush failed"):
        Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)] * 3), [FailsToClose()]).run()
    assert closed == [True]


def test_an_error_in_the_loop_body_closes_the_pipeline(tmp_path, no_thread_leak):
    video = tmp_path / "loop.mp4"
    images = [np.full((48, 64, 3), i, np.uint8) for i in range(100)]
    with pytest.raises(KeyError), Pipeline(ArraySource(images), [], [VideoWriter(video)]) as p:
        for frame in p:
            if frame.index == 4:
                raise KeyError("stop here")
    n = probe(video)[0]
    assert 5 <= n < 100  # finalized and playable, not every frame


def test_sinks_may_be_plain_functions():
    seen = []
    summary = Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)] * 7),
                       [lambda f: f], [lambda f: seen.append(f.index)]).run()
    assert seen == list(range(7)) and summary.frames == 7


# -- stages alone ---------------------------------------------------------------------------------
def fake_model(found_box=(0.25, 0.5, 0.75, 1.0)):
    """A predictor callable: one person at ``found_box`` (normalised ymin xmin ymax xmax)."""
    calls = []

    def predict(inputs):
        batch = inputs["inputs"]
        calls.append(batch.shape)
        n = batch.shape[0]
        return {
            "detection_boxes": np.tile(np.array(found_box, np.float32), (n, 1, 1)),
            "detection_scores": np.full((n, 1), 0.8, np.float32),
            "detection_classes": np.ones((n, 1), np.float32),
            "num_detections": np.ones(n, np.float32),
        }

    return predict, calls


def test_detector_alone_on_numpy_images():
    predict, calls = fake_model()
    with Detector(predict) as detector:
        detections = detector.detect(np.zeros((100, 200, 3), np.uint8))
    assert calls == [(1, 100, 200, 3)]
    assert detections.labels == ("person",)
    np.testing.assert_allclose(detections.boxes[0], [100, 25, 200, 75])  # pixels of the image


def test_detector_alone_finds_the_person_in_a_real_photo(centernet):
    from make_clip import skimage_photo

    with Detector() as detector:
        detections = detector.detect(skimage_photo("astronaut"))
    people = [d for d in detections if d.label == "person"]
    assert people, detections.labels
    x1, y1, x2, y2 = people[0].box
    truth = (0, 0, 370, 512)  # samples/make_clip.py PHOTO_OBJECTS
    ix = max(0, min(x2, truth[2]) - max(x1, truth[0]))
    iy = max(0, min(y2, truth[3]) - max(y1, truth[1]))
    union = (x2 - x1) * (y2 - y1) + 370 * 512 - ix * iy
    assert ix * iy / union > 0.7


def test_video_writer_alone_on_frames_you_made(tmp_path):
    path = tmp_path / "made.mp4"
    box = Detections(boxes=[[40, 30, 120, 90]], scores=[0.9], class_ids=[1])
    with VideoWriter(path, rate=25) as writer:
        for i in range(10):
            writer.write(np.full((120, 160, 3), 100, np.uint8), box if i >= 5 else None)
    n, w, h, rate, times = probe(path)
    assert (n, w, h, rate) == (10, 160, 120, Fraction(25))
    assert times == pytest.approx([i / 25 for i in range(10)])
    frames = decoded(path)
    # boxes drawn only where detections were given: the box's top edge changed colour
    assert np.abs(frames[2][30, 60:100].astype(int) - 100).max() < 10
    assert np.abs(frames[7][30, 60:100].astype(int) - 100).max() > 60


def test_video_writer_alone_keeps_frame_timestamps(tmp_path):
    path = tmp_path / "ts.mp4"
    rate = Fraction(30000, 1001)
    source = ArraySource([np.zeros((64, 64, 3), np.uint8)] * 6, rate=rate)
    with source, VideoWriter(path, rate=rate) as writer:
        for frame in source.frames():
            writer.write(frame)
    n, _, _, rate, times = probe(path)
    assert n == 6 and rate == Fraction(30000, 1001)
    assert times == pytest.approx([i * 1001 / 30000 for i in range(6)], abs=1e-4)


def test_video_writer_finalizes_on_error_and_refuses_after_close(tmp_path):
    path = tmp_path / "err.mp4"
    with pytest.raises(ZeroDivisionError), VideoWriter(path, rate=10) as writer:
        for _ in range(3):
            writer.write(np.zeros((32, 32, 3), np.uint8))
        1 / 0  # noqa: B018
    assert probe(path)[0] == 3
    with pytest.raises(OutputError, match="closed"):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    assert probe(path)[0] == 3


def test_frame_with_image_keeps_position_and_detections():
    dets = Detections(boxes=[[0, 0, 2, 2]], scores=[0.5], class_ids=[1])
    f = Frame.from_array(np.zeros((4, 4, 3), np.uint8), index=3, pts=9,
                         time_base=Fraction(1, 30)).with_detections(dets)
    g = f.with_image(np.full((4, 4, 3), 7, np.uint8))
    assert (g.index, g.pts, g.time_base, g.detections) == (3, 9, Fraction(1, 30), dets)
    assert g.image.max() == 7 and f.image.max() == 0
