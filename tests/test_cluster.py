"""Many videos on a local Ray cluster, for real: one task per video, a missing input among good
ones, a worker killed mid-video and retried, Ctrl-C, and the merged summary."""

from __future__ import annotations

import json
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from media import red_square_clip

from vidstream.config import RunConfig
from vidstream.cost import Price

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from vidstream.cluster import connect, run_on_ray  # noqa: E402
from vidstream.cluster_progress import ClusterProgress  # noqa: E402
from vidstream.sinks.output import stale_temps  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs, on loopback, for this module."""
    yield connect(None, num_cpus=2)
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    d = tmp_path_factory.mktemp("clips")
    out = {}
    for name, n in (("a", 12), ("b", 30), ("c", 21)):
        red_square_clip(d / f"{name}.mp4", frames=n, width=160, height=120,
                        rate=Fraction(25))
        out[name] = (d / f"{name}.mp4", n)
    red_square_clip(d / "long.mp4", frames=75, width=160, height=120, rate=Fraction(25))
    out["long"] = (d / "long.mp4", 75)
    return out


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def config(src: Path, out: Path, model: Path, **kw) -> RunConfig:
    stem = src.stem
    return RunConfig(input=str(src), video=str(out / f"{stem}.mp4"),
                     detections=str(out / f"{stem}.jsonl"), model=str(model), **kw)


def test_videos_run_as_tasks_and_a_missing_one_is_reported(cluster, clips, tiny_model,
                                                           tmp_path):
    configs = [config(clips[n][0], tmp_path, tiny_model) for n in ("a", "b", "c")]
    configs.insert(1, config(tmp_path / "missing.mp4", tmp_path, tiny_model))
    result = run_on_ray(configs, price=Price("c5.xlarge", 0.17))
    assert result.exit_code == 3  # some completed, one failed
    states = [t.state for t in result.tasks]
    assert states == ["ended", "failed", "ended", "ended"]
    assert "missing.mp4: no such file" in result.tasks[1].error
    summary = result.summary()
    for name, task in zip(("a", "b", "c"), [result.tasks[i] for i in (0, 2, 3)], strict=True):
        n = clips[name][1]
        assert task.summary["frames"] == n
        assert frames_in(tmp_path / f"{name}.mp4") == n
        assert len((tmp_path / f"{name}.jsonl").read_text().splitlines()) == n
    # the merged summary is the sum of its parts
    assert summary["frames"] == 12 + 30 + 21 == sum(s["frames"] for s in summary["streams"])
    assert summary["frames_in"] == sum(s["frames_in"] for s in summary["streams"]) == 63
    for stream, task in zip(summary["streams"], result.tasks, strict=True):
        assert stream["frames"] == (task.summary or {}).get("frames", 0)
        assert stream["frames_in"] == (task.summary or {}).get("frames_in", 0)
    assert summary["stages"]["detect"]["items"] == 63
    assert [s["state"] for s in summary["streams"]] == states
    assert summary["streams"][1]["frames"] == 0 and summary["cluster"]["failed"] == 1
    assert summary["cost"]["usd_total"] == pytest.approx(0.17 * result.wall_s / 3600)
    assert sum(s["cost"]["share"] for s in summary["streams"]) == pytest.approx(1.0)
    json.dumps(summary)  # plain data, as --summary writes it


def test_a_worker_killed_mid_video_is_retried_to_a_complete_output(cluster, clips,
                                                                    tiny_model, tmp_path):
    src, n = clips["long"]
    jsonl = tmp_path / "long.jsonl"
    killed: list[int] = []
    left: list[str] = []

    def kill_when_halfway() -> None:
        # the video is read at its own rate (3 s): kill its worker once frames are written
        # and the video's temporary file exists (the encoder starts a few frames in)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            temps = stale_temps(tmp_path / "long.mp4")
            if temps and jsonl.exists() and len(jsonl.read_text().splitlines()) >= 10:
                left.extend(t.name for t in temps)
                for p in psutil.process_iter(["cmdline"]):
                    if "ray::run_task" in " ".join(p.info["cmdline"] or []):
                        p.kill()
                        killed.append(p.pid)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_halfway, daemon=True)
    killer.start()
    result = run_on_ray([config(src, tmp_path, tiny_model, realtime=True)], retries=1)
    killer.join(5)
    assert killed, "the worker was never killed"
    assert result.exit_code == 0, result.tasks[0].error
    assert result.tasks[0].state == "ended" and result.tasks[0].summary["frames"] == n
    # the retry's outputs are whole: every frame once, nothing of the killed attempt
    assert frames_in(tmp_path / "long.mp4") == n
    indices = [json.loads(x)["index"] for x in jsonl.read_text().splitlines()]
    assert indices == list(range(n))
    # the killed attempt's temporary video was removed when the retry started
    assert left and not (tmp_path / left[0]).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_progress_tells_queued_running_done_frames_and_nodes(cluster, clips, tiny_model,
                                                             tmp_path):
    # the long clip is read at its own rate (3 s), so it is seen running, frames part done
    configs = [config(clips["long"][0], tmp_path, tiny_model, realtime=True),
               config(clips["a"][0], tmp_path, tiny_model),
               config(clips["b"][0], tmp_path, tiny_model)]
    seen: list[ClusterProgress] = []
    result = run_on_ray(configs, progress=seen.append, poll_s=0.1)
    assert result.exit_code == 0
    total = 75 + 12 + 30
    assert seen and all(p.tasks == 3 for p in seen)
    assert all(p.queued + p.running + p.done + p.failed == 3 for p in seen)
    assert any(p.running > 0 for p in seen)
    assert any(0 < p.frames < total and p.running for p in seen)  # told while running
    frames = [p.frames for p in seen]
    assert frames == sorted(frames)  # no retry here: frames only grow
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    busy = [n for p in seen for n in p.nodes if n.running]
    assert busy and all(n.cpus == 2 and 0 < n.load <= 1 for n in busy)
    last = seen[-1]
    assert (last.done, last.queued, last.running, last.failed) == (3, 0, 0, 0)
    assert last.frames == last.frames_total == total == result.summary()["frames"]
    assert last.eta_s == 0
    assert [n.running for n in last.nodes] == [0] * len(last.nodes) and last.nodes


def test_a_task_lost_on_every_try_is_reported(cluster, clips, tiny_model, tmp_path):
    src, _ = clips["long"]
    stop = threading.Event()

    def kill_every_worker() -> None:
        while not stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                if "ray::run_task" in " ".join(p.info["cmdline"] or []):
                    p.kill()
            time.sleep(0.2)

    killer = threading.Thread(target=kill_every_worker, daemon=True)
    killer.start()
    try:
        result = run_on_ray([config(src, tmp_path, tiny_model, realtime=True)], retries=1)
    finally:
        stop.set()
        killer.join(5)
    assert result.exit_code == 1
    assert result.tasks[0].state == "failed"
    assert result.tasks[0].error.startswith("task lost:")


def test_ctrl_c_cancels_the_rest_and_keeps_what_finished(cluster, clips, tiny_model, tmp_path):
    first = config(clips["a"][0], tmp_path, tiny_model)
    slow = [config(clips["long"][0], tmp_path / f"s{i}", tiny_model, realtime=True)
            for i in range(2)]
    for i in range(2):
        (tmp_path / f"s{i}").mkdir()

    def interrupt_after_the_first(progress: ClusterProgress) -> None:
        if progress.finished >= 1:
            raise KeyboardInterrupt

    result = run_on_ray([first, *slow], progress=interrupt_after_the_first, poll_s=0.1)
    assert result.exit_code == 130 and result.interrupted
    assert result.tasks[0].state == "ended"
    assert frames_in(tmp_path / "a.mp4") == clips["a"][1]  # finished outputs stay intact
    assert [t.state for t in result.tasks[1:]] == ["cancelled", "cancelled"]
    assert result.summary()["interrupted"] is True


def test_detect_on_the_cluster_from_the_command_line(cluster, clips, tiny_model, tmp_path,
                                                     capsys):
    from vidstream.cli import main

    a, b = clips["a"][0], clips["b"][0]
    code = main(["detect", str(a), str(b), "-o", str(tmp_path / "{stem}-out.mp4"),
                 "--model", str(tiny_model), "--cluster", "ray", "--instance", "c5.xlarge",
                 "--summary", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["frames"] == clips["a"][1] + clips["b"][1]
    assert [s["stem"] for s in summary["streams"]] == ["a", "b"]
    assert frames_in(tmp_path / "a-out.mp4") == clips["a"][1]
    assert frames_in(tmp_path / "b-out.mp4") == clips["b"][1]
    assert "fps across the cluster" in err
    # off a terminal: progress lines, the last one when every task is done
    assert "tasks 2/2 done, 0 running, 0 queued, 0 failed  frames 42/42" in err
    # the merged summary is a run `vidstream report` compares like any other
    assert main(["report", str(tmp_path / "run.json"), "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["runs"]
    assert row["label"] == "c5.xlarge x 1 (Ray, 2 tasks)"
    assert (row["fps"], row["frames"]) == (summary["fps"], summary["frames"])
    assert row["usd_per_100k_inferences"] == summary["cost"]["usd_per_100k_inferences"] > 0
    assert row["usd_per_hour"] == 0.17  # c5.xlarge for the one node
    assert main(["report", str(tmp_path / "run.json")]) == 0
    assert "c5.xlarge x 1 (Ray, 2 tasks)" in capsys.readouterr().out


def test_the_live_view_on_a_terminal(cluster, clips, tiny_model, tmp_path):
    import io

    from rich.console import Console

    from vidstream.cli.detect import execute

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    cfg = config(clips["a"][0], tmp_path, tiny_model, cluster="ray")
    assert execute(cfg, console=console) == 0
    text = screen.getvalue()
    assert "1 task on a local Ray cluster" in text  # the view's title, drawn while it ran
    assert "running" in text and "load" in text and "12 frames" in text


# -- cameras: live inputs in camera groups, one actor each --------------------------------------
CAM_FRAMES = 75
CAM_RATE = Fraction(25)


@pytest.fixture(scope="module")
def camera_clip(media_dir) -> bytes:
    """An MPEG-TS clip a loopback server sends as a camera would (3 s at 25 fps)."""
    from media import clip_variant

    path = clip_variant(media_dir / "cluster-cam.ts", "ts", frames=CAM_FRAMES, rate=CAM_RATE,
                        gop=10)
    return path.read_bytes()


def camera(data: bytes, *steps, speed: float = 1.0):
    """A live HTTP stream on loopback; ``sized`` so its end is a clean end (a camera's stream
    would be lost there: the test wants cameras that finish)."""
    from loopback import LoopbackServer, Step

    return LoopbackServer(data, CAM_FRAMES / float(CAM_RATE), list(steps) or [Step()],
                          protocol="http", speed=speed, sized=True, lifetime_s=120)


def camera_config(url: str, out: Path, name: str, model: Path, **kw) -> RunConfig:
    return RunConfig(input=url, video=str(out / f"{name}.mp4"),
                     detections=str(out / f"{name}.jsonl"), model=str(model), **kw)


def test_cameras_run_as_one_group_in_an_actor(cluster, camera_clip, tiny_model, tmp_path):
    with camera(camera_clip, speed=2) as c1, camera(camera_clip, speed=2) as c2, \
            camera(camera_clip, speed=2) as c3:
        configs = [camera_config(c.url, tmp_path, f"cam{n}", tiny_model, leaky=False)
                   for n, c in enumerate((c1, c2, c3), 1)]
        seen = []
        result = run_on_ray(configs, streams_per_task=8, progress=seen.append, poll_s=0.1)
    assert result.exit_code == 0, [t.error for t in result.tasks]
    # the progress board hears from each camera of the group while it records
    assert any(p.running == 3 and 0 < p.frames < 3 * CAM_FRAMES for p in seen)
    assert [s.frames for s in seen] == sorted(s.frames for s in seen)
    assert (seen[-1].done, seen[-1].frames) == (3, 3 * CAM_FRAMES)
    summary = result.summary()
    streams = summary["streams"]
    assert [s["state"] for s in streams] == ["ended"] * 3
    assert {s["group"] for s in streams} == {0}  # one actor for the three
    assert [t.summary["group"]["streams"] for t in result.tasks] == [3, 3, 3]
    for n, s in enumerate(streams, 1):
        assert s["node"] and s["restarts"] == 0 and s["parts"] == []
        assert s["frames"] == s["frames_in"] == CAM_FRAMES  # not leaky: every frame
        assert frames_in(tmp_path / f"cam{n}.mp4") == CAM_FRAMES
        assert len((tmp_path / f"cam{n}.jsonl").read_text().splitlines()) == CAM_FRAMES
    # the shared detector is counted once, for all three streams
    assert summary["stages"]["detect"]["items"] == 3 * CAM_FRAMES
    assert summary["frames"] == 3 * CAM_FRAMES
    json.dumps(summary)


def test_a_camera_that_fails_affects_only_its_stream(cluster, camera_clip, tiny_model,
                                                    tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    with camera(camera_clip, speed=4) as cam:
        configs = [camera_config(cam.url, tmp_path, "good", tiny_model),
                   camera_config(dead, tmp_path, "dead", tiny_model, stall_timeout=2)]
        result = run_on_ray(configs)
    assert result.exit_code == 3  # some streams ended cleanly
    good, gone = result.tasks
    assert (good.state, gone.state) == ("ended", "failed")
    assert good.group == gone.group == 0 and "cannot open" in gone.error
    assert frames_in(tmp_path / "good.mp4") == good.summary["frames"] > 0


def test_streams_per_task_splits_the_cameras_into_groups(camera_clip):
    from vidstream.camera_groups import partition

    cams = [RunConfig(f"rtsp://cam/{n}") for n in range(5)]
    files = [RunConfig("a.mp4"), RunConfig("b.mp4")]
    other_model = RunConfig("rtsp://cam/x", model="other")
    configs = [files[0], *cams[:3], other_model, files[1], *cams[3:]]
    assert partition(configs, 2) == ([0, 5], [[1, 2], [3, 6], [4], [7]])
    assert partition(configs, 8) == ([0, 5], [[1, 2, 3, 6, 7], [4]])


def kill_the_group_once(jsonl: Path, lines: int, killed: list[int]) -> threading.Thread:
    """Kills the camera group's process (SIGKILL) once ``jsonl`` holds ``lines`` lines."""

    since = time.time() - 1  # processes of earlier tests' groups may still be on their way out

    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            try:
                n = len(jsonl.read_text().splitlines())
            except FileNotFoundError:
                n = 0
            if n >= lines:
                for p in psutil.process_iter(["cmdline", "create_time"]):
                    if ("ray::CameraGroup" in " ".join(p.info["cmdline"] or [])
                            and p.info["create_time"] >= since):
                        p.kill()
                        killed.append(p.pid)
                        return
            time.sleep(0.05)

    t = threading.Thread(target=kill, daemon=True)
    t.start()
    return t


@pytest.mark.slow  # about 20 s: two model loads and a camera read twice, at its own pace
def test_a_killed_camera_group_is_restarted_and_keeps_what_it_recorded(
        cluster, camera_clip, tiny_model, tmp_path):
    from loopback import Step

    killed: list[int] = []
    with camera(camera_clip, Step(), Step()) as cam:  # a connection for each attempt
        cfg = camera_config(cam.url, tmp_path, "cam", tiny_model, leaky=False)
        killer = kill_the_group_once(tmp_path / "cam.jsonl", 40, killed)
        result = run_on_ray([cfg], retries=1)
        killer.join(5)
        assert cam.connections == 2
    assert killed, "the camera group was never killed"
    task = result.tasks[0]
    assert result.exit_code == 0, task.error
    assert task.state == "ended" and task.restarts == 1
    part_video, part_jsonl = (tmp_path / "cam.restart1.mp4", tmp_path / "cam.restart1.jsonl")
    assert task.parts == [str(part_video), str(part_jsonl)]
    # the lost attempt's recording, kept aside: readable up to its last fragment
    kept = frames_in(part_video)
    assert 0 < kept < CAM_FRAMES
    assert len(part_jsonl.read_text().splitlines()) >= 40
    # the restarted attempt's output is whole: the camera from its reconnection to its end
    assert task.summary["frames"] == CAM_FRAMES
    assert frames_in(tmp_path / "cam.mp4") == CAM_FRAMES
    indices = [json.loads(x)["index"] for x in (tmp_path / "cam.jsonl").read_text().splitlines()]
    assert indices == list(range(CAM_FRAMES))
    stream = result.summary()["streams"][0]
    assert stream["restarts"] == 1 and stream["parts"] == task.parts


def test_a_camera_group_lost_with_no_restart_left_is_reported(cluster, camera_clip,
                                                              tiny_model, tmp_path):
    killed: list[int] = []
    with camera(camera_clip) as cam:
        cfg = camera_config(cam.url, tmp_path, "cam", tiny_model, leaky=False)
        # 40 frames: over a second of video, so the output holds a fragment when killed
        killer = kill_the_group_once(tmp_path / "cam.jsonl", 40, killed)
        result = run_on_ray([cfg], retries=0)
        killer.join(5)
    assert killed, "the camera group was never killed"
    task = result.tasks[0]
    assert result.exit_code == 1
    assert task.state == "failed" and task.error.startswith("camera group lost:")
    # nothing restarted, nothing moved: what it recorded stays at its name, readable
    assert not list(tmp_path.glob("*.restart*"))
    assert 0 < frames_in(tmp_path / "cam.mp4") < CAM_FRAMES


def test_files_go_to_tasks_and_cameras_to_a_group_from_the_command_line(
        cluster, clips, camera_clip, tiny_model, tmp_path, capsys):
    from vidstream.cli import main

    a, n = clips["a"]
    with camera(camera_clip, speed=2) as cam:
        code = main(["detect", str(a), cam.url, "-o", str(tmp_path / "{stem}-out.mp4"),
                     "--detections", str(tmp_path / "{stem}.jsonl"),
                     "--model", str(tiny_model), "--cluster", "ray", "--streams-per-task", "4",
                     "--summary", str(tmp_path / "run.json")])
    assert code == 0, capsys.readouterr().err
    file_, live = json.loads((tmp_path / "run.json").read_text())["streams"]
    assert (file_["stem"], file_["group"], file_["state"], file_["frames"]) == ("a", None,
                                                                                  "ended", n)
    assert (live["stem"], live["group"], live["state"]) == ("live", 0, "ended")
    assert live["node"] and live["restarts"] == 0
    assert live["frames_in"] == CAM_FRAMES  # leaky by default: some may be dropped, and said
    assert live["frames"] + live["dropped"] + live["decode_errors"] == CAM_FRAMES
    assert frames_in(tmp_path / "live-out.mp4") == live["frames"]
    assert frames_in(tmp_path / "a-out.mp4") == n


def test_ctrl_c_stops_a_camera_group_and_its_outputs_are_finalized(
        cluster, camera_clip, tiny_model, tmp_path):
    jsonl = tmp_path / "cam.jsonl"

    def interrupt_once_recording(progress) -> None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 20:
            raise KeyboardInterrupt

    with camera(camera_clip) as cam:
        cfg = camera_config(cam.url, tmp_path, "cam", tiny_model, leaky=False)
        result = run_on_ray([cfg], progress=interrupt_once_recording, poll_s=0.1)
    assert result.exit_code == 130 and result.interrupted
    task = result.tasks[0]
    assert task.state == "ended", task.error  # stopped, not cancelled: it finished its frames
    assert 20 <= task.summary["frames"] < CAM_FRAMES
    assert frames_in(tmp_path / "cam.mp4") == task.summary["frames"]
    assert len(jsonl.read_text().splitlines()) == task.summary["frames"]


# -- an existing cluster, joined by address ---------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a minute: a head node, and two runs that each start TensorFlow and Ray
def test_detect_joins_an_existing_cluster_by_address(clips, tiny_model, tmp_path):
    """`ray start --head` on loopback, as a user would start one, then `vidstream detect
    --cluster ray://HOST:PORT` (Ray Client) and `--cluster ray` with RAY_ADDRESS, each in its
    own process; the head is stopped afterwards."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin, "the ray command comes with vidstream[ray]"
    gcs, client, metrics = free_port(), free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # Ray >= 2.59 starts `ray start` clusters with token authentication: a client on
           # this machine uses the token it left in ~/.ray/auth_token
           "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--port", str(gcs), "--ray-client-server-port",
         str(client), "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
         "--include-dashboard=false", "--disable-usage-stats", "--metrics-export-port",
         str(metrics), "--dashboard-agent-listen-port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        started = b""
        while b"Ray runtime started" not in started:
            assert head.poll() is None and time.monotonic() < deadline, started.decode()
            started += head.stdout.readline()
        for n, (address, extra) in enumerate(((f"ray://127.0.0.1:{client}", {}),
                                              ("ray", {"RAY_ADDRESS": f"127.0.0.1:{gcs}"}))):
            out = tmp_path / str(n)
            out.mkdir()
            r = subprocess.run(
                [sys.executable, "-m", "vidstream", "detect", str(clips["a"][0]),
                 str(clips["c"][0]), "-o", str(out / "{stem}.mp4"), "--model", str(tiny_model),
                 "--cluster", address, "--summary", str(out / "run.json")],
                env={**env, **extra}, capture_output=True, text=True, timeout=240)
            assert r.returncode == 0, r.stderr
            summary = json.loads((out / "run.json").read_text())
            assert summary["frames"] == clips["a"][1] + clips["c"][1]
            assert [s["state"] for s in summary["streams"]] == ["ended", "ended"]
            assert frames_in(out / "a.mp4") == clips["a"][1]
            assert frames_in(out / "c.mp4") == clips["c"][1]
            where = extra.get("RAY_ADDRESS", address)  # joined, not started here
            assert f"2 tasks on {where}" in r.stderr
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops what it started
        head.wait(60)
