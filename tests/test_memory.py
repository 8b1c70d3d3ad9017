"""Memory is bounded by the queues, not by the video: a clip several times longer costs no more.

Each run is a fresh ``vidstream detect`` process; its peak resident memory comes from the
kernel (``wait4`` rusage), so nothing in the process under test measures itself. The quick
check (in ``make test``) runs the test-double model (tests/fakemodel.py: no TensorFlow, so a
smaller baseline in which growth shows); the slow one the real SavedModel path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from media import red_square_clip

TESTS = Path(__file__).resolve().parent
WIDTH, HEIGHT = 640, 360


def peak_rss_mib(args: list[str], fake_model: bool = False) -> float:
    vidstream = [str(TESTS / "fakemodel.py"), "--"] if fake_model else ["-m", "vidstream"]
    proc = subprocess.Popen([sys.executable, *vidstream, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == 0, err
    return usage.ru_maxrss / 1024  # KiB on Linux


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_peak_memory_does_not_grow_with_the_video(tmp_path, tiny_model):
    peaks = {}
    for frames in (250, 1000):
        clip = tmp_path / f"clip{frames}.mp4"
        red_square_clip(clip, frames=frames, width=WIDTH, height=HEIGHT, audio=True)
        peaks[frames] = peak_rss_mib([
            "detect", str(clip), "-o", str(tmp_path / f"out{frames}.mp4"), "--model",
            str(tiny_model), "--detections", str(tmp_path / f"d{frames}.jsonl"), "-q"])
    print(f"peak RSS at {WIDTH}x{HEIGHT}: 250 frames {peaks[250]:.0f} MiB, "
          f"1000 frames {peaks[1000]:.0f} MiB ({peaks[1000] / peaks[250] - 1:+.1%})")
    assert peaks[1000] <= peaks[250] * 1.10


def test_peak_memory_does_not_grow_with_the_video_quick(tmp_path):
    """Three times the frames (video, audio, detections): the same peak. Below about 200
    frames the encoder is still filling its buffers (+10% from 100 to 200 frames here), so
    both clips start past that."""
    peaks = {}
    for frames in (240, 720):
        clip = tmp_path / f"clip{frames}.mp4"
        red_square_clip(clip, frames=frames, width=WIDTH, height=HEIGHT, audio=True)
        peaks[frames] = peak_rss_mib([
            "detect", str(clip), "-o", str(tmp_path / f"out{frames}.mp4"),
            "--detections", str(tmp_path / f"d{frames}.jsonl"), "-q"], fake_model=True)
    assert peaks[720] <= peaks[240] * 1.10, peaks
