"""Many videos on a local Ray cluster, for real: one task per video, a missing input among good
ones, a worker killed mid-video and retried, Ctrl-C, and the merged summary."""

from __future__ import annotations

import json
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
