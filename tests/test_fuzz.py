"""Broken files from the command line: a good clip cut short and corrupted at seeded places.

Every case must end in seconds with either a one-line error (exit 1) or an output that opens
and holds exactly the frames the summary reports (exit 0 only when every frame came through,
exit 3 when the input ended early or was damaged). Never a hang, never a traceback. A fixed
handful of cases per container runs by default; ``--runslow`` runs them all.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest
from media import clip_variant, count_frames, red_square_clip

from vidstream.cli import main

FRAMES = 60
KINDS = ("mp4", "faststart", "fmp4", "ts", "mp4-audio")
SUFFIX = {"mp4": ".mp4", "faststart": ".mp4", "fmp4": ".mp4", "ts": ".ts", "mp4-audio": ".mp4"}
FAST, ALL = 2, 12  # cases per kind and damage: by default / with --runslow


def _cases() -> list:
    params = []
    for kind in KINDS:
        rng = random.Random(f"vidstream-fuzz-{kind}")
        cuts = [round(rng.uniform(0.03, 0.99), 3) for _ in range(ALL)]
        seeds = [rng.randrange(1 << 30) for _ in range(ALL)]
        for i, cut in enumerate(cuts):
            marks = () if i < FAST else (pytest.mark.slow,)
            params.append(pytest.param(kind, "cut", cut, marks=marks, id=f"{kind}-cut{cut}"))
        for i, seed in enumerate(seeds):
            marks = () if i < FAST else (pytest.mark.slow,)
            params.append(pytest.param(kind, "burst", seed, marks=marks,
                                       id=f"{kind}-burst{seed}"))
    return params


def damage(data: bytes, how: str, arg: float) -> bytes:
    """``cut``: keep the first ``arg`` of the bytes; ``burst``: overwrite 3 runs of 16-128
    bytes with random ones, placed by the seed ``arg``."""
    if how == "cut":
        return data[: int(len(data) * arg)]
    rng = random.Random(arg)
    out = bytearray(data)
    for _ in range(3):
        size = rng.randint(16, 128)
        at = rng.randrange(0, len(out) - size)
        out[at : at + size] = bytes(rng.randrange(256) for _ in range(size))
    return bytes(out)


@pytest.fixture(scope="module")
def good_clips(media_dir):
    clips = {}
    for kind in KINDS:
        path = media_dir / f"fuzz-{kind}{SUFFIX[kind]}"
        if kind == "mp4-audio":  # the audio is copied from the damaged input too
            red_square_clip(path, frames=FRAMES, width=160, height=120, audio=True)
            clips[kind] = path
        else:
            clips[kind] = clip_variant(path, kind, frames=FRAMES)
    return clips


def run_detect(path, tmp_path, tiny_model, capsys):
    out, jl, sj = tmp_path / "out.mp4", tmp_path / "d.jsonl", tmp_path / "s.json"
    t0 = time.monotonic()
    code = main(["detect", str(path), "-o", str(out), "--model", str(tiny_model),
                 "--detections", str(jl), "--summary", str(sj), "--no-dashboard"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    summary = json.loads(sj.read_text()) if sj.exists() else None
    return code, err, elapsed, out, jl, summary


def check_outcome(code, err, out, jl, summary, name, whole: int) -> str:
    """What a user is promised about a broken input; returns the outcome in words."""
    assert "Traceback" not in err
    assert code in (0, 1, 3), err
    if code == 1:
        last = err.strip().splitlines()[-1]
        errors = [line for line in err.splitlines() if line.startswith("vidstream: error: ")]
        assert len(errors) == 1 and name in errors[0], err
        if out.exists():  # it failed part-way: what was processed is there and playable
            assert summary is not None and count_frames(out) == summary["frames"] > 0
        return f"error: {last}"
    assert summary is not None
    frames = summary["frames"]
    assert frames > 0  # zero frames is never a success
    assert count_frames(out) == frames
    assert len(jl.read_text().splitlines()) == frames
    assert summary["frames_in"] == frames + summary["dropped"] + summary["decode_errors"]
    assert summary["dropped"] == 0  # a file is never dropped from
    if code == 0:
        assert frames == whole, "a damaged file that lost frames must not exit 0"
        return "complete"
    warning = [line for line in err.splitlines() if "input ended early or is damaged" in line]
    assert len(warning) == 1 and name in warning[0] and f"wrote the {frames} frames" in warning[0]
    return f"partial: {frames} of {whole} frames"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("kind", "how", "arg"), _cases())
def test_damaged_input_ends_cleanly(kind, how, arg, good_clips, tmp_path, tiny_model, capsys,
                                    no_thread_leak):
    bad = tmp_path / f"damaged{SUFFIX[kind]}"
    bad.write_bytes(damage(good_clips[kind].read_bytes(), how, arg))
    code, err, _, out, jl, summary = run_detect(bad, tmp_path, tiny_model, capsys)
    check_outcome(code, err, out, jl, summary, bad.name, FRAMES)  # a hang: the timeout mark


@pytest.mark.parametrize("kind", KINDS)
def test_intact_clips_are_complete(kind, good_clips, tmp_path, tiny_model, capsys):
    code, err, _, out, jl, summary = run_detect(good_clips[kind], tmp_path, tiny_model, capsys)
    assert code == 0, err
    assert check_outcome(code, err, out, jl, summary, good_clips[kind].name, FRAMES) == "complete"
    assert "warning" not in err


@pytest.mark.parametrize("kind", ["faststart", "fmp4", "ts"])
def test_truncated_stream_keeps_every_frame_decoded(kind, good_clips, tmp_path, tiny_model,
                                                    capsys):
    """Cut in the middle: the frames before the cut are all written, and exit code 3 says so."""
    data = good_clips[kind].read_bytes()
    cut = tmp_path / f"cut{SUFFIX[kind]}"
    cut.write_bytes(data[: len(data) // 2 + 101])
    code, err, _, out, jl, summary = run_detect(cut, tmp_path, tiny_model, capsys)
    assert code == 3, err
    assert 10 < summary["frames"] < FRAMES
    assert summary["source"]["ended_early"]
    check_outcome(code, err, out, jl, summary, cut.name, FRAMES)
    # frames are the input's own, in order: the JSONL times step by one frame
    times = [json.loads(line)["time"] for line in jl.read_text().splitlines()]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_truncated_plain_mp4_is_an_error_not_zero_frames(good_clips, tmp_path, tiny_model,
                                                         capsys):
    data = good_clips["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the index (moov) is at the end: gone
    code, err, _, out, _, _ = run_detect(cut, tmp_path, tiny_model, capsys)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("vidstream: error: ")
    assert "cut.mp4" in err and not out.exists()


def test_damaged_file_from_a_real_process(good_clips, tmp_path, tiny_model):
    """The same promise where a user meets it: a separate process, its stderr, its exit code."""
    data = good_clips["ts"].read_bytes()
    bad = tmp_path / "broken.ts"
    bad.write_bytes(damage(data[: len(data) * 3 // 4 + 50], "burst", 7))
    out, sj = tmp_path / "out.mp4", tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-m", "vidstream", "detect", str(bad), "-o", str(out),
                        "--model", str(tiny_model), "--summary", str(sj), "-q"],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr
    assert r.returncode == 3, r.stderr
    summary = json.loads(sj.read_text())
    assert count_frames(out) == summary["frames"] > 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"vidstream: warning: {bad}: input ended early or is damaged")
    assert lines[0].endswith(f"wrote the {summary['frames']} frames decoded")
