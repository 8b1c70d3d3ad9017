"""Ctrl-C, SIGTERM and kill -9 on a real ``vidstream`` process.

First signal: stop reading, finish the frames in flight, finalize the outputs, write the
summary, exit 130. Second: exit at once (outputs still closed). A hard kill leaves a fragmented
MP4 readable up to its last fragment. Most cases run the command with a test-double model
(tests/fakemodel.py) so they start in a second; one runs ``python -m vidstream`` as is.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from media import count_frames, red_square_clip

from vidstream import Pipeline, Stage, VideoSource

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FRAMES = 150


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "signals.mp4"
    red_square_clip(path, frames=FRAMES, width=160, height=120)
    return path


class Run:
    """A vidstream process writing video, detections and summary into ``tmp``."""

    def __init__(self, tmp: Path, clip: Path, *extra: str, model: Path | str | None = None,
                 delay: float = 0.0, fragmented: bool = False):
        self.video, self.jsonl, self.summary_path = tmp / "o.mp4", tmp / "d.jsonl", tmp / "s.json"
        args = ["detect", str(clip), "-o", str(self.video), "--detections", str(self.jsonl),
                "--summary", str(self.summary_path), "--no-dashboard", "--realtime", *extra]
        if fragmented:
            args.append("--fragmented")
        if model is not None:
            cmd = [sys.executable, "-m", "vidstream", *args, "--model", str(model)]
        else:
            cmd = [sys.executable, str(TESTS / "fakemodel.py"), "--delay", str(delay), "--", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)

    def lines(self) -> int:
        try:
            return len(self.jsonl.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def wait_for_frames(self, n: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.lines() < n:
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "no frames came out"
            time.sleep(0.02)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        return code, self.proc.stderr.read()

    def summary(self) -> dict:
        return json.loads(self.summary_path.read_text())


def assert_finalized(run: Run, code: int, err: str) -> dict:
    assert code == 130, err
    assert "Traceback" not in err
    summary = run.summary()
    assert summary["interrupted"] is True and summary["error"] is None
    frames = summary["frames"]
    assert 0 < frames < FRAMES
    assert count_frames(run.video) == frames  # playable, and holds every frame processed
    assert run.lines() == frames
    assert f"interrupted after {frames} frames; outputs finalized" in err
    return summary


def test_ctrl_c_finishes_frames_in_flight(clip, tmp_path, tiny_model):
    run = Run(tmp_path, clip, model=tiny_model)
    run.wait_for_frames(20)
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish()  # a hang fails in finish(); how fast is the machine's business
    summary = assert_finalized(run, code, err)
    # nothing read was lost: every frame the decoder passed on reached the outputs
    assert summary["stages"]["decode"]["items_out"] == summary["frames"]
    assert summary["frames_in"] == summary["frames"] + summary["dropped"]


@pytest.mark.model
def test_ctrl_c_with_the_real_default_model(clip, tmp_path, centernet):
    """The default model as shipped (``python -m vidstream``, TF Lite in the detector thread):
    the first Ctrl-C finishes what is in flight, exit 130, outputs finalized."""
    run = Run(tmp_path, clip, "--instance", "m5.large", model="centernet")
    run.wait_for_frames(5)
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish(timeout=60)
    summary = assert_finalized(run, code, err)
    assert summary["model"] == "centernet"
    assert summary["frames_in"] == summary["frames"] + summary["dropped"]


class PipelineFileRun(Run):
    """``vidstream run pipelines/detect-file.toml --input CLIP`` in ``tmp`` (test-double
    model, 0.05 s a frame); the file names its outputs after the input's stem."""

    def __init__(self, tmp: Path, clip: Path):
        stem = clip.stem
        self.video = tmp / f"{stem}-detected.mp4"
        self.jsonl, self.summary_path = tmp / f"{stem}.jsonl", tmp / f"{stem}-summary.json"
        cmd = [sys.executable, str(TESTS / "fakemodel.py"), "--delay", "0.05", "--", "run",
               str(ROOT / "pipelines" / "detect-file.toml"), "--input", str(clip),
               "--no-dashboard"]
        self.proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)


def test_ctrl_c_stops_a_pipeline_file_run_with_exit_130(clip, tmp_path):
    run = PipelineFileRun(tmp_path, clip)
    run.wait_for_frames(10)
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish()
    summary = assert_finalized(run, code, err)
    assert summary["stages"]["decode"]["items_out"] == summary["frames"]


def test_ctrl_c_stops_bench_and_its_measuring_process_with_exit_130(clip, tmp_path,
                                                                     tiny_model):
    """Ctrl-C at a terminal signals the whole process group: bench and the child measuring
    a configuration. Bench exits 130 and leaves no child behind."""
    import os

    import psutil

    save = tmp_path / "bench.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidstream", "bench", str(clip), "--model", str(tiny_model),
         "--batch-sizes", "1,2", "--no-video", "-q", "--save", str(save)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    children: list = []
    while not children:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "bench started no measuring process"
        children = psutil.Process(proc.pid).children()
        time.sleep(0.05)
    time.sleep(0.5)  # past the child's start-up, into its measuring
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(30)
    err = proc.stderr.read()
    assert code == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "vidstream: interrupted"
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_sigterm_is_a_graceful_stop(clip, tmp_path):
    run = Run(tmp_path, clip)
    run.wait_for_frames(20)
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.finish()
    summary = assert_finalized(run, code, err)
    assert summary["stages"]["decode"]["items_out"] == summary["frames"]


def test_second_ctrl_c_exits_at_once(clip, tmp_path):
    """A slow model (0.5 s a frame) behind full queues would take 8 s to drain."""
    run = Run(tmp_path, clip, "--queue-size", "8", delay=0.5)
    run.wait_for_frames(2)
    time.sleep(0.5)  # the queues are full behind the slow model by now
    run.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish()
    assert "aborting" in err
    summary = assert_finalized(run, code, err)
    # it did not wait for the frames in flight (what "at once" means, whatever the machine's
    # speed: a wall-clock bound here would only measure the machine)
    assert summary["stages"]["decode"]["items_out"] > summary["frames"] + 2


def test_hard_kill_leaves_a_readable_fragmented_mp4(clip, tmp_path):
    run = Run(tmp_path, clip, fragmented=True)
    run.wait_for_frames(100)
    run.proc.kill()
    run.finish()
    written = run.lines()
    readable = count_frames(run.video)
    # fragments are cut at least every second (30 frames); the encoder holds a few more
    assert written - 45 <= readable <= written
    assert readable > 30


def test_stop_from_another_thread_delivers_in_flight_frames(clip, tmp_path, no_thread_leak):
    """The API behind the first Ctrl-C: stop() lets every frame already read through."""
    seen: list[int] = []

    class Slow(Stage):
        name = "slow"

        def process(self, frame):
            time.sleep(0.01)
            seen.append(frame.index)
            return frame

    pipeline = Pipeline(VideoSource(clip), [Slow()], capacity=8)
    with pipeline:
        pipeline.open()
        threading.Timer(0.3, pipeline.stop).start()
        summary = pipeline.run()
    assert summary.interrupted
    assert 0 < summary.frames < FRAMES
    assert seen == list(range(summary.frames))
    assert summary.stages[0].items_out == summary.frames


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
def test_signal_handlers_are_restored(clip, tmp_path, tiny_model):
    """execute() installs its handlers for the run only (it may be called in-process)."""
    from vidstream.cli import main

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    code = main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--max-frames", "5", "-q"])
    assert code == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
