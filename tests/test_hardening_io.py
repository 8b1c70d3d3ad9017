"""Issue 11 (hardening): outputs, disk and input safety. Each test names the bug it guards.

Outputs never replace an input (compared by file identity, not by spelling); small outputs
are whole or absent; two runs never write one file at once; a full disk is said plainly and
never claimed as written; a hostile frame size is refused before FFmpeg allocates for it;
rotated phone clips are detected and written upright; odd inputs get a clear message.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import count_frames, red_square_clip

from vidstream import DetectionsWriter, Detector, Pipeline, VideoSource, VideoWriter
from vidstream.cli import main
from vidstream.config import load_pipeline_file
from vidstream.sinks import VideoWriter as _VideoWriter

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "hardening.mp4"
    red_square_clip(path, frames=30, width=160, height=120)
    return path


def fake_detect(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``vidstream ARGS`` in a process, with the test-double model (starts in a second)."""
    return subprocess.run([sys.executable, str(TESTS / "fakemodel.py"), "--", *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def errors(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("vidstream: error: ")]


# -- 1. an output that is the input by another path ----------------------------------------------
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_an_output_linked_to_the_input_is_refused(link, clip, tmp_path, tiny_model, capsys):
    """Regression: ``-o link.mp4 -y`` with link.mp4 a link to the input overwrote the input
    while reading it (250 frames -> 37): the check compared path strings."""
    src = tmp_path / "in.mp4"
    shutil.copy(clip, src)
    out = tmp_path / "link.mp4"
    (os.symlink if link == "symlink" else os.link)(src, out)
    before = src.read_bytes()
    code = main(["detect", str(src), "-o", str(out), "-y", "--model", str(tiny_model), "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (f"vidstream: error: {out}: is the input {src} by another path; writing it "
                   "would destroy the input (see --output)\n")
    assert src.read_bytes() == before


def test_every_output_is_compared_with_the_input_and_each_other(clip, tmp_path, tiny_model,
                                                                  capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.mp4"
    shutil.copy(clip, src)
    os.symlink("in.mp4", "alias.json")
    base = ["detect", "in.mp4", "--no-video", "--model", str(tiny_model), "-q", "-y"]
    assert main([*base, "--summary", "alias.json"]) == 1
    assert "alias.json: is the input in.mp4 by another path" in capsys.readouterr().err
    # two outputs spelled differently, one file: neither exists yet
    (tmp_path / "sub").mkdir()
    assert main([*base, "--summary", "s.json", "--counts", "sub/../s.json"]) == 1
    assert capsys.readouterr().err == (
        "vidstream: error: sub/../s.json: is also the summary output (s.json); each output "
        "needs its own file (see --counts)\n")
    assert count_frames(src) == 30


# -- 3. a full disk --------------------------------------------------------------------------------
class FullDisk:
    """The output container, refusing every video packet after the first ``room`` ones with
    ENOSPC, as a filling disk does."""

    def __init__(self, container, room: int):
        self.container, self.room = container, room

    def __getattr__(self, name):
        return getattr(self.container, name)

    def mux(self, packet):
        if packet.stream.type == "video":
            if self.room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= 1
        self.container.mux(packet)


def test_a_full_disk_is_said_plainly_and_no_frame_is_claimed_that_does_not_read_back(
        clip, tmp_path, tiny_model, capsys, monkeypatch):
    """Regression: the message claimed frames the MP4 did not hold (and the MP4 was left
    unreadable); a JSONL that could not be written was reported as "wrote"."""
    real_setup = _VideoWriter._setup

    def setup(self, info):
        self._container = FullDisk(self._container, room=12)
        real_setup(self, info)

    monkeypatch.setattr(_VideoWriter, "_setup", setup)
    out, sj = tmp_path / "out.mp4", tmp_path / "s.json"
    code = main(["detect", str(clip), "-o", str(out), "--summary", str(sj), "--model",
                 str(tiny_model), "--no-dashboard", "--preset", "ultrafast"])
    err = capsys.readouterr().err
    assert code == 1
    (line,) = errors(err)
    assert line.endswith(f"{out}: cannot write: No space left on device")
    summary = json.loads(sj.read_text())
    assert summary["error"] in line
    video = summary["video_file"]
    assert video["finalized"] is True and video["error"] == "No space left on device"
    # what the message and the summary claim is what reads back
    assert video["frames"] == count_frames(out) <= 12
    assert f"{video['frames']} frames processed before the error were written to {out}" in err
    assert f"wrote {out}" in err and not list(tmp_path.glob(".*"))  # no temporary left


def test_a_jsonl_that_could_not_be_written_is_not_reported_as_written(clip, tmp_path,
                                                                      tiny_model, capsys,
                                                                      monkeypatch):
    jl = tmp_path / "d.jsonl"
    real_open = DetectionsWriter.open

    def open_(self, info=None):
        real_open(self, info)
        real = self._fh

        class Filling:
            lines = 0

            def write(self, text):
                Filling.lines += 1
                if Filling.lines > 5:
                    real.write(text[:7])  # the disk took part of the line
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real.write(text)

            def __getattr__(self, name):
                return getattr(real, name)

        self._fh = Filling()

    monkeypatch.setattr(DetectionsWriter, "open", open_)
    code = main(["detect", str(clip), "--no-video", "--detections", str(jl), "--model",
                 str(tiny_model), "--no-dashboard"])
    err = capsys.readouterr().err
    assert code == 1
    assert "wrote" not in err
    assert f"vidstream: {jl}: incomplete (No space left on device): it holds the first 5 " \
           "frames" in err
    lines = jl.read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 1, 2, 3, 4]  # whole lines only


def test_summary_and_counts_are_whole_or_absent(clip, tmp_path, tiny_model, capsys,
                                                monkeypatch):
    """Regression: writing the summary to a full disk raised a traceback and left a 0-byte
    file. Now it is written to a temporary name and renamed: whole, or not there at all."""
    sj, counts = tmp_path / "s.json", tmp_path / "c.json"
    sj.write_text('{"old": true}\n')
    real_fsync = os.fsync

    def fsync(fd):
        if os.fstat(fd).st_size > 200:  # the new summary, not the small old one
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code = main(["detect", str(clip), "--no-video", "--summary", str(sj), "--counts",
                 str(counts), "-y", "--model", str(tiny_model), "--no-dashboard"])
    err = capsys.readouterr().err
    assert code == 1
    assert errors(err)[0] == f"vidstream: error: {sj}: cannot write: No space left on device"
    assert json.loads(sj.read_text()) == {"old": True}  # the old file, untouched
    assert json.loads(counts.read_text())["frames"] == 30  # small enough: written whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "s.json"]


def test_accounting_holds_when_a_sink_fails(clip, tmp_path, tiny_model, monkeypatch):
    """Regression: on a full disk the summary said frames_in 168 against frames 158, with no
    drop counted: the frames queued for the failed sink vanished from the accounting."""
    real_setup = _VideoWriter._setup

    def setup(self, info):
        self._container = FullDisk(self._container, room=4)
        real_setup(self, info)

    monkeypatch.setattr(_VideoWriter, "_setup", setup)
    sj = tmp_path / "s.json"
    main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--summary", str(sj),
          "--model", str(tiny_model), "-q", "--queue-size", "8"])
    s = json.loads(sj.read_text())
    assert s["frames_in"] == s["frames"] + s["dropped"] + s["decode_errors"]


CHECK_FULL_DISK = textwrap.dedent("""
    import json, os, sys
    import av
    d = sys.argv[1]
    facts = {"files": sorted(os.listdir(d))}
    try:
        with av.open(os.path.join(d, "out.mp4")) as c:
            facts["frames"] = sum(1 for _ in c.decode(video=0))
    except (av.FFmpegError, OSError) as e:
        facts["frames"] = repr(e)
    try:
        facts["summary"] = json.load(open(os.path.join(d, "s.json")))
    except (OSError, ValueError) as e:
        facts["summary"] = repr(e)
    print("FACTS " + json.dumps(facts))
""")


def test_a_real_full_disk(tmp_path):
    """A small tmpfs that the video fills: no traceback, nothing claimed that does not read
    back, the summary whole or absent. Needs a private mount namespace (unshare -rm)."""
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    rng = np.random.default_rng(0)
    src = tmp_path / "noise.mp4"  # noise does not compress: about 25 KB a frame
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast"}
        for i in range(40):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), np.uint8),
                                           format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    disk = tmp_path / "disk"
    disk.mkdir()
    (tmp_path / "check.py").write_text(CHECK_FULL_DISK)
    script = (f"mount -t tmpfs -o size=400k tmpfs {disk} && "
              f"{sys.executable} {TESTS / 'fakemodel.py'} -- detect {src} -o {disk}/out.mp4 "
              f"--summary {disk}/s.json --no-dashboard --preset ultrafast; echo rc=$?; "
              f"{sys.executable} {tmp_path / 'check.py'} {disk}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "Traceback" not in r.stderr, r.stderr
    assert "rc=1" in r.stdout, r.stdout + r.stderr
    facts = json.loads(r.stdout.split("FACTS ", 1)[1])
    # no half-written temporary is left, and no video that does not play
    assert not [f for f in facts["files"] if f.startswith(".")], facts
    assert "out.mp4" not in facts["files"] or isinstance(facts["frames"], int), facts
    for line in r.stderr.splitlines():
        if "frames processed before the error were written" in line:
            assert f" {facts['frames']} frames" in line
    summary = facts["summary"]
    if isinstance(summary, dict):  # it fitted: whole, and it says the run failed
        assert summary["error"] and "No space left on device" in summary["error"]
        assert summary["video_file"]["finalized"] is False or (
            summary["video_file"]["frames"] == facts["frames"])
    else:  # it did not fit: absent, never a 0-byte file
        assert "s.json" not in facts["files"]
        assert f"{disk}/s.json: cannot write: No space left on device" in r.stderr


# -- 4. two runs writing one output ----------------------------------------------------------------
def test_a_second_run_on_the_same_output_is_refused(clip, tmp_path):
    """Regression: two runs writing one output both exited 0; the JSONL interleaved."""
    video, jl = tmp_path / "o.mp4", tmp_path / "d.jsonl"
    args = ["detect", str(clip), "-o", str(video), "--detections", str(jl), "--no-dashboard"]
    first = subprocess.Popen([sys.executable, str(TESTS / "fakemodel.py"), "--delay", "0.3",
                              "--", *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not jl.exists() or not jl.read_text():  # the first run is writing
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = fake_detect(*args)
        assert second.returncode == 1
        assert errors(second.stderr) == [
            f"vidstream: error: {video}: another run is writing it right now"]
        with_y = fake_detect(*args, "-y")  # -y does not make two writers of one file
        assert with_y.returncode == 1
        assert errors(with_y.stderr)[0].endswith(": another run is writing it right now")
        assert first.wait(60) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
    assert count_frames(video) == 30
    assert [json.loads(x)["index"] for x in jl.read_text().splitlines()] == list(range(30))
    assert not list(tmp_path.glob(".*"))  # no lock or temporary left behind


def test_with_y_the_last_run_to_finish_wins_whole(clip, tmp_path):
    video, sj = tmp_path / "o.mp4", tmp_path / "s.json"
    runs = [subprocess.Popen([sys.executable, str(TESTS / "fakemodel.py"), "--delay",
                              str(delay), "--", "detect", str(clip), "-o", str(video),
                              "--summary", str(sj), "-y", "--no-dashboard", "--max-frames",
                              str(frames)], stderr=subprocess.PIPE, text=True)
            for delay, frames in ((0.05, 20), (0.0, 30))]
    codes = [r.wait(90) for r in runs]
    assert codes == [0, 0], [r.stderr.read() for r in runs]
    # whichever finished last, the video is one run's whole output, its summary agrees
    frames = count_frames(video)
    assert frames in (20, 30) and json.loads(sj.read_text())["frames"] == frames
    assert not list(tmp_path.glob(".*"))


def test_a_fragmented_output_is_written_in_place_and_locked(clip, tmp_path):
    from vidstream.errors import OutputError
    from vidstream.frames import StreamInfo

    out = tmp_path / "live.mp4"
    info = StreamInfo(uri="x", width=64, height=48, rate=Fraction(25), time_base=Fraction(1, 25))
    first = VideoWriter(out, fragmented=True)
    first.open(info)
    try:
        for i in range(100):  # fragments are cut at least every second (30 frames)
            first.write(np.full((48, 64, 3), i, np.uint8))
        assert count_frames(out) > 0  # readable while it grows: written at its own name
        with pytest.raises(OutputError, match="another run is writing it right now"):
            VideoWriter(out, fragmented=True, overwrite=True).open(info)
    finally:
        first.close()


# -- 6. a live stream that drops for good ---------------------------------------------------------
def test_a_live_stream_lost_after_its_reconnects_is_an_error(media_dir, tmp_path):
    """Regression: with --reconnect 2, a stream closed on every connection ended with exit 0
    and ``"error": null``."""
    from loopback import LoopbackServer, Step
    from media import clip_variant

    data = clip_variant(media_dir / "hardening-live.ts", "ts", frames=90, gop=30).read_bytes()
    plan = [Step(0.5, "close"), Step(0.5, "close"), Step(0.5, "close")]
    with LoopbackServer(data, 3.0, plan, protocol="tcp", speed=2) as srv:
        video, sj = tmp_path / "o.mp4", tmp_path / "s.json"
        r = fake_detect("detect", srv.url, "-o", str(video), "--summary", str(sj),
                        "--no-dashboard", "--reconnect", "2", "--reconnect-delay", "0.1")
    assert r.returncode == 1, r.stderr
    expected = (f"vidstream: error: {srv.url}: stream lost after 2 reconnect attempts: "
                "the stream ended")
    assert errors(r.stderr) == [expected]
    summary = json.loads(sj.read_text())
    assert summary["error"] and "stream lost after 2 reconnect attempts" in summary["error"]
    assert count_frames(video) == summary["frames"] > 0  # finalized: what came is kept


def test_damage_in_a_live_stream_is_reported(tmp_path):
    """Regression: a damaged live stream ended with exit 0 and no warning; the damage was
    only a count in the JSON. Now it is ``ended_early`` (exit 3 and a warning line)."""
    path = tmp_path / "cam.mp4"
    red_square_clip(path, frames=5, width=64, height=48)
    source = VideoSource(path, live=True)
    source.open()
    frames = list(source.frames())
    source.close()
    assert source.ended_early is None
    source.corrupt_frames = 2
    source._check_complete(len(frames))
    assert source.ended_early == "2 frames are damaged (concealed by the decoder)"


# -- 8. the pixel cap before the allocation --------------------------------------------------------
def test_a_hostile_frame_size_is_refused_before_ffmpeg_allocates(tmp_path):
    """Regression: a few hundred bytes of H.264 claiming 16000x16000 cost 0.7-1.3 GB before
    the refusal (FFmpeg's probe decodes a frame at open). FFmpeg's own max_pixels now stops it."""
    from media import huge_header_h264

    path = huge_header_h264(tmp_path / "huge.h264", 16000, 16000)
    assert path.stat().st_size < 2000
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forked test process across exec
    code = textwrap.dedent(f"""
        import re
        from vidstream.sources import VideoSource
        from vidstream.errors import FrameTooLargeError
        try:
            VideoSource({str(path)!r}).open()
        except FrameTooLargeError as e:
            print("refused:", e)
        status = open("/proc/self/status").read()
        print("peak MB", int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "refused: " in r.stdout and "frame size 16000x16000 exceeds" in r.stdout, r.stderr
    peak = float(r.stdout.split("peak MB")[1])
    assert peak < 300, f"peak {peak:.0f} MB"


# -- 9. rotation ---------------------------------------------------------------------------------
def rotated_clip(path: Path, rotation: int, frames: int = 6, width: int = 160,
                 height: int = 96) -> tuple[int, int, int, int]:
    """A clip stored landscape with a display matrix of ``rotation`` degrees (counter-
    clockwise), as phones write portrait video; returns the red square's stored box."""
    box = (20, 10, 60, 40)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast"}
        s.set_display_rotation(rotation)
        for i in range(frames):
            image = np.full((height, width, 3), 128, np.uint8)
            image[box[1]:box[3], box[0]:box[2]] = (255, 0, 0)
            f = av.VideoFrame.from_ndarray(image, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return box


def test_a_rotated_phone_clip_is_detected_and_written_upright(tmp_path, tiny_model):
    """Regression: the display matrix was dropped: detection ran on sideways frames and the
    output played sideways."""
    src = tmp_path / "phone.mp4"
    x1, y1, x2, y2 = rotated_clip(src, -90)  # shown turned a quarter clockwise
    out, jl = tmp_path / "out.mp4", tmp_path / "d.jsonl"
    Pipeline(VideoSource(src), [Detector(tiny_model)],
             [VideoWriter(out), DetectionsWriter(jl)]).run()
    with av.open(str(out)) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height) == (96, 160)  # upright, portrait
        assert first.rotation == 0  # no matrix left to apply twice
    # a quarter turn clockwise: (x, y) -> (H - y, x)
    upright = [96 - y2, x1, 96 - y1, x2]
    (d,) = json.loads(jl.read_text().splitlines()[0])["detections"]
    assert d["box"] == pytest.approx(upright, abs=3)


# -- 10. odd sizes and names ---------------------------------------------------------------------
def test_a_1x1_video_says_what_the_minimum_size_is(tmp_path, tiny_model, capsys):
    """Regression: a 1x1 input failed with ``OSError: [Errno 95] Operation not supported``."""
    src = tmp_path / "dot.mkv"
    with av.open(str(src), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width = s.height = 1
        s.pix_fmt = "yuv444p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.zeros((1, 1, 3), np.uint8), format="rgb24")
            f = f.reformat(format="yuv444p")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    out = tmp_path / "o.mp4"
    assert main(["detect", str(src), "-o", str(out), "--model", str(tiny_model), "-q"]) == 1
    assert capsys.readouterr().err == (
        f"vidstream: error: {out}: the frames are 1x1; the libx264 encoder needs at least 2x2 "
        "pixels (see --output)\n")
    assert not out.exists()


@pytest.mark.parametrize("name", ["...mp4", "..mp4", ".mp4"])
def test_stem_never_leaves_the_output_directory(name, tmp_path):
    """Regression: an input named ``...mp4`` gave ``{stem}`` = ``..``, so
    ``results/{stem}/x.mp4`` escaped ``results/``."""
    toml = tmp_path / "p.toml"
    toml.write_text(f'[input]\nuri = "{name}"\n[output]\nvideo = "results/{{stem}}/x.mp4"\n')
    cfg = load_pipeline_file(toml)
    assert os.path.normpath(cfg.video).startswith("results" + os.sep), cfg.video
    assert ".." not in Path(cfg.video).parts
