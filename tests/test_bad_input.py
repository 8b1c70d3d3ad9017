"""Bad input and bad settings from the command line: one line naming the file and the cause,
exit 1, no traceback, in seconds, and nothing written. Refusals come before any work."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from media import clip_variant, count_frames

from vidstream.cli import main


@pytest.fixture(scope="module")
def clip(media_dir):
    return clip_variant(media_dir / "bad-input-good.mp4", "faststart", frames=30)


def make_input(case: str, tmp_path):
    """The broken input named ``case`` and the cause the error must give."""
    path = tmp_path / "input.mp4"
    if case == "missing":
        return path, "no such file"
    if case == "empty":
        path.touch()
        return path, "file is empty"
    if case == "text":
        path.write_text("These are my holiday notes, not a video.\n" * 50)
        return path, "not a readable video: Invalid data found when processing input"
    if case == "random":
        path.write_bytes(random.Random(4).randbytes(200_000))
        return path, "not a readable video: Invalid data found when processing input"
    if case == "directory":
        path.mkdir()
        return path, "is a directory, not a video"
    if case == "audio-only":
        path = tmp_path / "tone.m4a"
        with av.open(str(path), "w") as out:
            s = out.add_stream("aac", rate=48000)
            s.layout = "mono"
            for i in range(20):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32),
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, i * 1024
                for pkt in s.encode(frame):
                    out.mux(pkt)
            for pkt in s.encode(None):
                out.mux(pkt)
        return path, "no video stream (streams: audio)"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "random", "directory",
                                  "audio-only"])
def test_broken_input_is_one_line(case, tmp_path, tiny_model, capsys):
    path, cause = make_input(case, tmp_path)
    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    code = main(["detect", str(path), "-o", str(out), "--model", str(tiny_model),
                 "--summary", str(tmp_path / "s.json"), "--no-dashboard"])
    assert time.monotonic() - t0 < 5
    assert code == 1
    assert capsys.readouterr().err == f"vidstream: error: {path}: {cause}\n"
    assert not out.exists() and not (tmp_path / "s.json").exists()


def test_random_bytes_in_a_real_process(tmp_path):
    path, cause = make_input("random", tmp_path)
    r = subprocess.run([sys.executable, "-m", "vidstream", "detect", str(path), "-o",
                        str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (1, f"vidstream: error: {path}: {cause}\n")


def test_decode_error_budget(clip, tmp_path, tiny_model, capsys):
    """Isolated bad packets are counted and skipped; past --max-decode-errors it gives up."""
    data = bytearray(clip.read_bytes())
    rng = random.Random(11)
    for _ in range(12):  # bursts over the picture data, clear of the index at the front
        at = rng.randrange(len(data) // 5, len(data) - 64)
        data[at : at + 48] = rng.randbytes(48)
    bad = tmp_path / "scratched.mp4"
    bad.write_bytes(bytes(data))
    out, sj = tmp_path / "out.mp4", tmp_path / "s.json"
    args = ["detect", str(bad), "-o", str(out), "--model", str(tiny_model), "--summary",
            str(sj), "-q", "-y"]

    assert main(args) == 3
    summary = json.loads(sj.read_text())
    errors = summary["decode_errors"]
    assert errors > 0
    assert summary["frames_in"] == summary["frames"] + errors
    assert count_frames(out) == summary["frames"]
    warning = capsys.readouterr().err
    assert f"wrote the {summary['frames']} frames decoded" in warning

    assert main([*args, "--max-decode-errors", str(errors - 1)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"vidstream: error: {bad}: more than {errors - 1} decode errors")
    assert err[0].endswith("(see --max-decode-errors)")  # the CLI names its flag
    # it gave up part-way: what was decoded before is written and playable
    partial = json.loads(sj.read_text())["frames"]
    assert count_frames(out) == partial > 0
    assert err[1:] == [f"vidstream: {partial} frames processed before the error were written "
                       f"to {out}"]


# -- refused before any work ---------------------------------------------------------------
def test_unwritable_output_directory(clip, tmp_path, tiny_model, capsys):
    if os.geteuid() == 0:  # root writes anywhere a mode bit forbids; /proc refuses even root
        target, cause = "/proc/vidstream-out.mp4", "cannot write: No such file or directory"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target, cause = str(locked / "out.mp4"), "permission denied"
    code = main(["detect", str(clip), "-o", target, "--model", str(tiny_model), "-q"])
    assert code == 1
    assert capsys.readouterr().err == f"vidstream: error: {target}: {cause}\n"


def test_output_path_under_a_file(clip, tmp_path, tiny_model, capsys):
    target = clip.parent / clip.name / "out.mp4"
    code = main(["detect", str(clip), "-o", str(target), "--model", str(tiny_model), "-q"])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"vidstream: error: {target}: ")


@pytest.fixture(scope="module")
def wrong_models(tmp_path_factory):
    """A SavedModel that is not a detector, and a frozen graph with other tensor names."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("wrong-models")

    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        def __call__(self, images):
            return {"logits": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])}

    module = Classifier()
    tf.saved_model.save(module, str(root / "classifier"),
                        signatures={"serving_default": module.__call__})
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="pixels")
        tf.identity(tf.cast(x, tf.float32), name="scores")
    (root / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    (root / "junk.pb").write_text("not a graph")
    return root


@pytest.mark.parametrize(("model", "cause"), [
    ("classifier", "not an Object Detection API model: no outputs ['detection_boxes', "
                   "'detection_scores', 'detection_classes']; it has: logits"),
    ("other.pb", "the model has no input tensor 'image_tensor:0'; it has: pixels:0"),
    ("junk.pb", "not a frozen graph"),
    ("missing", "no such model file or directory"),
])
def test_wrong_model_is_refused_before_any_output(model, cause, clip, wrong_models, tmp_path,
                                                  capsys):
    out, jl = tmp_path / "out.mp4", tmp_path / "d.jsonl"
    code = main(["detect", str(clip), "-o", str(out), "--detections", str(jl), "--model",
                 str(wrong_models / model), "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vidstream: error: {wrong_models / model}: {cause}")
    assert err.count("\n") == 1
    assert not out.exists() and not jl.exists()
