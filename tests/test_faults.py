"""A stage that raises: the run stops within a second, every close() runs, no thread is left,
what was processed is finalized, and the error names the stage and the frame."""

from __future__ import annotations

import json
import time

import pytest
from fakemodel import Exploded, RedSquares
from media import count_frames, red_square_clip
from tinymodel import BLUE, red_square_frames

from vidstream import (
    DetectionsWriter,
    Detector,
    Pipeline,
    Sink,
    StageError,
    VideoSource,
    VideoWriter,
)
from vidstream.cli import main

FRAMES = 90


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "faults.mp4"
    red_square_clip(path, frames=FRAMES, width=160, height=120)
    return path


class Closes:
    """Wraps a stage or source and records that close() ran."""

    def __init__(self, inner, log: list):
        self.inner, self.log = inner, log
        self.name = inner.name

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def close(self):
        self.log.append(self.name)
        self.inner.close()


class FailingSink(Sink):
    name = "alarm"

    def __init__(self, fail_at: int):
        self.fail_at = fail_at
        self.raised_at: float | None = None

    def process(self, frame):
        if frame.index == self.fail_at:
            self.raised_at = time.monotonic()
            raise Exploded("the alarm sink broke")


class BreakingSource(VideoSource):
    """A real decoder whose read fails (like a disk error) before frame ``fail_at``."""

    def __init__(self, path, fail_at: int):
        super().__init__(path)
        self.fail_at = fail_at
        self.raised_at: float | None = None

    def frames(self):
        for frame in super().frames():
            if frame.index == self.fail_at:
                self.raised_at = time.monotonic()
                raise Exploded("the disk went away")
            yield frame


def run_failing(pipeline):
    with pytest.raises(StageError) as e, pipeline:
        pipeline.run()
    return e.value, time.monotonic()


@pytest.mark.parametrize("at", [0, 45, FRAMES - 1], ids=["first", "middle", "last"])
def test_model_failure(at, clip, tmp_path, no_thread_leak):
    closed: list = []
    model = RedSquares(fail_at=at)
    video, jl = tmp_path / "out.mp4", tmp_path / "d.jsonl"
    pipeline = Pipeline(Closes(VideoSource(clip), closed), [Closes(Detector(model), closed)],
                        [VideoWriter(video), DetectionsWriter(jl)])
    error, ended = run_failing(pipeline)
    assert ended - model.raised_at < 1.0
    assert error.stage == "detect" and error.frame == at
    assert str(error) == f"stage 'detect' at frame {at}: Exploded: the model exploded"
    assert isinstance(error.__cause__, Exploded)
    assert sorted(closed) == ["decode", "detect"]
    # every frame before the failure is in the outputs, finalized
    assert len(jl.read_text().splitlines()) == at
    if at == 0:
        assert not video.exists()  # not one frame: no file that looks like a video
    else:
        assert count_frames(video) == at
    summary = pipeline.summary()
    assert summary.frames == at and summary.error == str(error)


@pytest.mark.parametrize("at", [0, 45, FRAMES - 1], ids=["first", "middle", "last"])
def test_sink_failure(at, clip, tmp_path, no_thread_leak):
    video = tmp_path / "out.mp4"
    alarm = FailingSink(at)
    pipeline = Pipeline(VideoSource(clip), [Detector(RedSquares())], [VideoWriter(video), alarm])
    error, ended = run_failing(pipeline)
    assert ended - alarm.raised_at < 1.0
    assert (error.stage, error.frame) == ("sink", at)
    assert "the alarm sink broke" in str(error)
    # the video writer runs before the alarm in the sink stage: it holds the failing frame too
    assert count_frames(video) == at + 1


@pytest.mark.parametrize("at", [1, 45, FRAMES - 1], ids=["second", "middle", "last"])
def test_source_failure(at, clip, tmp_path, no_thread_leak):
    video, jl = tmp_path / "out.mp4", tmp_path / "d.jsonl"
    source = BreakingSource(clip, at)
    sinks = [VideoWriter(video), DetectionsWriter(jl)]
    pipeline = Pipeline(source, [Detector(RedSquares())], sinks)
    error, ended = run_failing(pipeline)
    assert ended - source.raised_at < 1.0
    assert (error.stage, error.frame) == ("decode", at)
    assert "the disk went away" in str(error)
    # frames decoded before the failure still reach every sink
    assert count_frames(video) == at
    assert len(jl.read_text().splitlines()) == at


def test_slow_stage_failure_does_not_wait_for_the_queue(clip, tmp_path, no_thread_leak):
    """The detector raises while the writer is slow and the queues are full: still prompt."""

    class SlowSink(Sink):
        name = "slow"

        def process(self, frame):
            time.sleep(0.05)

    model = RedSquares(fail_at=30)
    pipeline = Pipeline(VideoSource(clip), [Detector(model)], [SlowSink()], capacity=4)
    error, ended = run_failing(pipeline)
    assert error.frame == 30
    assert ended - model.raised_at < 1.0


# -- from the command line, with a real model that raises --------------------------------------
@pytest.fixture(scope="module")
def tripwire(tmp_path_factory):
    from tinymodel import export_tripwire_model

    return export_tripwire_model(tmp_path_factory.mktemp("models") / "tripwire")


def blue_frame_clip(path, blue_at: int, frames: int = FRAMES):
    from make_clip import encode

    def images():
        for i, (image, _) in enumerate(red_square_frames(frames, 160, 120, size=20)):
            if i == blue_at:
                image[:48, :48] = BLUE
            yield image

    encode(path, images())
    return path


@pytest.mark.parametrize("at", [0, 57, FRAMES - 1], ids=["first", "middle", "last"])
def test_model_raising_from_the_cli(at, tripwire, tmp_path, capsys, no_thread_leak):
    clip = blue_frame_clip(tmp_path / "blue.mp4", at)
    out, jl, sj = tmp_path / "out.mp4", tmp_path / "d.jsonl", tmp_path / "s.json"
    code = main(["detect", str(clip), "-o", str(out), "--model", str(tripwire),
                 "--detections", str(jl), "--summary", str(sj), "--no-dashboard"])
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("vidstream: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"vidstream: error: stage 'detect' at frame {at}: ")
    assert "tripwire: a blue frame" in errors[0]
    summary = json.loads(sj.read_text())
    assert summary["frames"] == at and summary["error"] in errors[0]
    assert len(jl.read_text().splitlines()) == at
    if at:
        assert count_frames(out) == at
        assert f"{at} frames processed before the error were written to {out}" in err
    else:
        assert not out.exists()
