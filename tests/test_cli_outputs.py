"""``vidstream detect``'s output options, judged by what they produce.

``--classes``, ``--catalog``, ``--no-audio`` and ``--no-annotate`` are checked on the files
they write (frame counts, detections kept, audio present or not, pixels drawn or not, the
price in the summary), not on messages or option parsing, which may change.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from media import red_square_clip

from vidstream.cli import main

FRAMES = 12


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "cli-outputs.mp4"
    red_square_clip(path, frames=FRAMES, width=320, height=240, audio=True)
    return path


def detect(clip, tmp_path, tiny_model, *extra):
    """Runs ``vidstream detect`` on ``clip``; returns (exit code, video, records, summary)."""
    out, jl, sj = tmp_path / "out.mp4", tmp_path / "d.jsonl", tmp_path / "s.json"
    video = [] if "--no-video" in extra else ["-o", str(out)]
    code = main(["detect", str(clip), *video, "--model", str(tiny_model),
                 "--detections", str(jl), "--summary", str(sj), "-y", "-q", *extra])
    records = [json.loads(line) for line in jl.read_text().splitlines()] if jl.exists() else []
    summary = json.loads(sj.read_text()) if sj.exists() else None
    return code, out, records, summary


def streams(path):
    with av.open(str(path)) as c:
        return sorted(s.type for s in c.streams)


def pictures(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]


def changed(video, source) -> list[int]:
    """Per frame, the pixels of ``video`` far from ``source`` (more than H.264 moves them)."""
    a, b = pictures(video), pictures(source)
    assert len(a) == len(b)
    return [int((np.abs(x - y).max(axis=-1) > 80).sum()) for x, y in zip(a, b, strict=True)]


# -- --classes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("classes", "kept"), [("car", True), ("person,car", True),
                                               ("person", False)])
def test_classes_keeps_only_the_named_classes(classes, kept, clip, tmp_path, tiny_model):
    # the test model finds the red square as a car (class 3) in every frame
    code, out, records, summary = detect(clip, tmp_path, tiny_model, "--classes", classes)
    assert code == 0
    assert len(records) == summary["frames"] == FRAMES
    labels = [[d["label"] for d in r["detections"]] for r in records]
    assert labels == ([["car"]] * FRAMES if kept else [[]] * FRAMES)
    assert len(pictures(out)) == FRAMES


def test_a_class_filtered_out_is_not_drawn(clip, tmp_path, tiny_model):
    (tmp_path / "kept").mkdir()
    (tmp_path / "dropped").mkdir()
    _, kept, _, _ = detect(clip, tmp_path / "kept", tiny_model, "--classes", "car")
    _, dropped, _, _ = detect(clip, tmp_path / "dropped", tiny_model, "--classes", "person")
    assert min(changed(kept, clip)) > 200  # a box outline and its label
    assert max(changed(dropped, clip)) < 20


# -- --no-annotate, --no-audio --------------------------------------------------------------------
def test_no_annotate_writes_the_frames_as_they_came(clip, tmp_path, tiny_model):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, annotated, records, _ = detect(clip, tmp_path / "a", tiny_model)
    assert code == 0
    code, plain, plain_records, _ = detect(clip, tmp_path / "b", tiny_model, "--no-annotate")
    assert code == 0
    assert plain_records == records  # still detected and recorded, only not drawn
    drawn, untouched = changed(annotated, clip), changed(plain, clip)
    assert len(drawn) == len(untouched) == FRAMES
    # a box outline and its label (hundreds of pixels), against re-encoding's few strays
    assert min(drawn) > 200
    assert max(untouched) < 20


def test_audio_is_copied_by_default_and_left_out_with_no_audio(clip, tmp_path, tiny_model):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, with_audio, _, _ = detect(clip, tmp_path / "a", tiny_model)
    assert code == 0 and streams(with_audio) == ["audio", "video"]
    code, silent, _, summary = detect(clip, tmp_path / "b", tiny_model, "--no-audio")
    assert code == 0 and streams(silent) == ["video"]
    assert len(pictures(silent)) == summary["frames"] == FRAMES


# -- --catalog ------------------------------------------------------------------------------------
def test_catalog_adds_and_overrides_prices_for_the_run(clip, tmp_path, tiny_model):
    catalog = tmp_path / "prices.json"
    catalog.write_text(json.dumps({"instances": [
        {"name": "my-box", "usd_per_hour": 0.1, "source": "electricity bill"},
        {"name": "c5.4xlarge", "usd_per_hour": 0.5, "source": "my invoice"},
    ]}))
    for instance, price in (("my-box", 0.1), ("c5.4xlarge", 0.5)):
        (tmp_path / instance).mkdir()
        code, _, _, summary = detect(clip, tmp_path / instance, tiny_model, "--no-video",
                                     "--instance", instance, "--catalog", str(catalog))
        assert code == 0
        cost = summary["cost"]
        assert (cost["instance"], cost["usd_per_hour"]) == (instance, price)
        assert cost["usd_per_100k_inferences"] == pytest.approx(
            price * 100_000 / (3_600 * summary["fps"]), rel=0.01)
