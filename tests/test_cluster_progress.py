"""A cluster run's progress without Ray: the board's bookkeeping, the driver's snapshot and ETA,
the live view and the progress lines, and the temporary files a killed attempt leaves."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from vidstream.cli.cluster_view import ClusterView, cluster_price, plain_line
from vidstream.cluster_progress import ClusterProgress, NodeLoad, ProgressBoard, ProgressTracker
from vidstream.cost import Price
from vidstream.sinks.output import OutputFile, stale_temps

NODES = [{"NodeID": "aa11", "NodeManagerHostname": "gpu-1", "Alive": True,
          "Resources": {"CPU": 4.0}},
         {"NodeID": "bb22", "NodeManagerHostname": "gpu-2", "Alive": True,
          "Resources": {"CPU": 4.0}},
         {"NodeID": "cc33", "NodeManagerHostname": "gone", "Alive": False,
          "Resources": {"CPU": 4.0}}]


def ended(frames: int) -> SimpleNamespace:
    return SimpleNamespace(state="ended", summary={"frames": frames})


def tracker_with(board: ProgressBoard, tasks: int = 4) -> ProgressTracker:
    t = ProgressTracker(tasks, cpus_per_task=2.0)
    t.set_nodes(NODES)
    t.update(*board.changes(0))
    return t


def test_the_board_keeps_the_latest_word_of_the_current_attempt():
    b = ProgressBoard()
    b.started(0, "first", "aa11", "gpu-1")
    b.frames(0, "first", 40, 100)
    b.started(0, "retry", "bb22", "gpu-2")  # the first worker was lost at 40 frames
    b.frames(0, "first", 50, 100)  # its last word, late: ignored
    b.frames(0, "retry", 10, 100)
    changed, lost, version = b.changes(0)
    assert changed[0]["frames"] == 10 and changed[0]["node_id"] == "bb22"
    assert lost == 40
    assert b.changes(version)[0] == {}  # nothing new since


def test_the_snapshot_counts_tasks_frames_and_nodes():
    b = ProgressBoard()
    b.started(0, "x", "aa11", "gpu-1")
    b.frames(0, "x", 30, 100)
    b.started(1, "x", "bb22", "gpu-2")
    b.frames(1, "x", 20, 50)
    b.started(2, "x", "aa11", "gpu-1")
    t = tracker_with(b)
    p = t.snapshot({2: ended(60)}, elapsed=10.0, now=0.0)
    assert (p.tasks, p.queued, p.running, p.done, p.failed) == (4, 1, 2, 1, 0)
    assert p.frames == 30 + 20 + 60 and p.frames_total is None  # task 3 not started
    assert [(n.node, n.cpus, n.running, n.load) for n in p.nodes] == [
        ("gpu-1", 4.0, 1, 0.5), ("gpu-2", 4.0, 1, 0.5)]
    assert p.eta_s == 10.0 * 3  # no rate yet: from the tasks finished so far

    b.frames(0, "x", 60, 100)
    b.frames(1, "x", 40, 50)
    t.update(*b.changes(0))
    p = t.snapshot({2: ended(60)}, elapsed=12.0, now=2.0)
    assert p.fps == (160 - 110) / 2
    # frames left: 40 + 10 running, and the queued video guessed at the mean (100+50+60)/3
    assert p.eta_s == (50 + 70) / 25
    assert {n.node: n.fps for n in p.nodes} == {"gpu-1": 15.0, "gpu-2": 10.0}


def test_a_running_task_of_unknown_length_falls_back_to_the_task_rate():
    b = ProgressBoard()
    b.started(0, "x", "aa11", "gpu-1")
    b.frames(0, "x", 30, None)  # a container that does not say its length
    t = tracker_with(b, tasks=2)
    assert t.snapshot({}, elapsed=5.0, now=0.0).eta_s is None  # nothing finished: unknown
    t.snapshot({}, elapsed=6.0, now=1.0)
    p = t.snapshot({1: ended(10)}, elapsed=8.0, now=2.0)
    assert p.eta_s == 8.0 and p.frames_total is None
    done = t.snapshot({0: ended(50), 1: ended(10)}, elapsed=9.0, now=3.0)
    assert (done.done, done.running, done.eta_s, done.frames) == (2, 0, 0.0, 60)


def test_nodes_on_one_host_are_told_apart():
    t = ProgressTracker(1, 1.0)
    t.set_nodes([{"NodeID": "aa11ff", "NodeManagerHostname": "h", "Alive": True,
                  "Resources": {"CPU": 2}},
                 {"NodeID": "bb22ff", "NodeManagerHostname": "h", "Alive": True,
                  "Resources": {"CPU": 2}}])
    assert [n.node for n in t.snapshot({}, 0.0, now=0.0).nodes] == ["h:aa11ff", "h:bb22ff"]


SNAPSHOT = ClusterProgress(tasks=8, queued=3, running=2, done=2, failed=1, frames=1210,
                           frames_total=None, fps=48.26, elapsed_s=25.0, eta_s=41.0,
                           nodes=(NodeLoad("gpu-1", 4, 2, 2.0, 30.1),
                                  NodeLoad("gpu-2", 4, 0, 0.0, 18.2)))


def test_the_progress_line_off_a_terminal():
    assert plain_line(SNAPSHOT) == ("tasks 2/8 done, 2 running, 3 queued, 1 failed  "
                                    "frames 1210  fps 48.3  elapsed 0:25  eta 0:41")


def test_the_live_view_shows_tasks_rate_nodes_and_cost():
    console = Console(record=True, width=100)
    view = ClusterView("8 tasks on a local Ray cluster", price=Price("c5.xlarge", 0.17))
    console.print(view)
    assert "starting..." in console.export_text()
    view.update(SNAPSHOT)
    console.print(view)
    text = console.export_text()
    assert "8 tasks on a local Ray cluster" in text
    assert "38%  tasks 2/8 done, 2 running, 3 queued, 1 failed" in text  # 3 of 8 finished
    assert "frames 1210  fps 48.3 across the cluster  elapsed 0:25  eta 0:41" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.strip().startswith("gpu-")}
    assert rows["gpu-1"][1:4] == ["4", "2", "██████████"[:5] + "░░░░░"]
    assert rows["gpu-1"][-2:] == ["50%", "30.1"] and rows["gpu-2"][-2:] == ["0%", "18.2"]
    assert "at c5.xlarge x 2 ($0.34/h)" in text  # both nodes are paid for


def test_the_cluster_price_is_a_node_s_times_the_nodes():
    p = Price("c5.xlarge", 0.17)
    assert cluster_price(p, 1) is p and cluster_price(None, 3) is None
    assert (cluster_price(p, 3).name, cluster_price(p, 3).usd_per_hour) == ("c5.xlarge x 3",
                                                                            0.17 * 3)


def test_stale_temps_are_the_output_s_own_temporary_files(tmp_path):
    out = tmp_path / "clip.mp4"
    left = OutputFile(out).begin()  # a run killed here never removes it
    left.write_bytes(b"half a video")
    for other in (".clip.vidstream-0123abcd.mkv", ".clip2.vidstream-0123abcd.mp4",
                  ".clip.vidstream-xyz.mp4", "clip.mp4.partial", ".clip.mp4.lock"):
        (tmp_path / other).write_bytes(b"")
    assert stale_temps(out) == [left]
    assert stale_temps(tmp_path / "missing-dir" / "x.mp4") == []
