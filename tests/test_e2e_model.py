"""End to end with the real default model on clips made from real photos."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from make_clip import make_clip, skimage_photo

from vidstream import EIPredictor
from vidstream.cli import main
from vidstream.detections import box_iou

pytestmark = pytest.mark.model




def best(detections, label):
    found = [d for d in detections if d["label"] == label]
    return max(found, key=lambda d: d["score"]) if found else None


def overlap(detections, label, box) -> float:
    """The best IoU of any ``label`` detection with ``box`` (0 when there is none)."""
    return max((box_iou(d["box"], box) for d in detections if d["label"] == label), default=0.0)


@pytest.fixture(scope="module")
def photo_run(centernet, tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    clip = d / "photos.mp4"
    truth = make_clip(clip, scene="photos", width=1920, height=1080, count=24, audio=True)
    out, jl, sj = d / "out.mp4", d / "d.jsonl", d / "s.json"
    # this mobile model scores the composited cup ~0.3, so the threshold is lowered for it
    code = main(["detect", str(clip), "-o", str(out), "--detections", str(jl), "--summary",
                 str(sj), "--threshold", "0.25", "--no-dashboard", "--instance", "m5.large"])
    assert code == 0
    return {"clip": clip, "truth": truth, "out": out,
            "detections": [json.loads(x) for x in jl.read_text().splitlines()],
            "summary": json.loads(sj.read_text())}


def test_person_and_cup_are_found_near_their_known_boxes(photo_run):
    hits = {"person": 0, "cup": 0}
    for record, truth in zip(photo_run["detections"], photo_run["truth"], strict=True):
        for obj in truth:
            if overlap(record["detections"], obj["label"], obj["box"]) > 0.5:
                hits[obj["label"]] += 1
    n = len(photo_run["truth"])
    assert hits["person"] >= 0.9 * n, hits
    assert hits["cup"] >= 0.9 * n, hits


def test_person_scores_above_the_default_threshold(photo_run):
    scores = [(best(r["detections"], "person") or {"score": 0.0})["score"]
              for r in photo_run["detections"]]
    assert np.median(scores) >= 0.4


def test_output_matches_input_frames_size_rate_timestamps_and_audio(photo_run):
    def probe(path):
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            times = [f.time for f in c.decode(video=0)]
            return (len(times), v.width, v.height, v.average_rate, times,
                    [s.type for s in c.streams])

    a, b = probe(photo_run["clip"]), probe(photo_run["out"])
    assert b[:4] == a[:4]
    assert b[4] == pytest.approx(a[4], abs=1e-6)
    assert "audio" in b[5]


def test_summary_reports_stages_latency_and_cost(photo_run):
    s = photo_run["summary"]
    assert s["frames"] == 24 and s["fps"] > 0 and s["model_load_s"] > 0
    assert s["bottleneck"] in s["stages"]
    assert s["cost"]["instance"] == "m5.large"
    assert s["model"] == "centernet"


def test_traffic_scene_finds_the_vehicles(centernet, tmp_path):
    clip = tmp_path / "traffic.mp4"
    truth = make_clip(clip, scene="traffic", width=1920, height=1080, count=12)
    jl = tmp_path / "t.jsonl"
    assert main(["detect", str(clip), "--no-video", "--detections", str(jl),
                 "--no-dashboard", "-q"]) == 0
    records = [json.loads(x) for x in jl.read_text().splitlines()]
    assert len(records) == 12
    labels = {o["label"] for o in truth[0]}
    assert "motorcycle" in labels
    for record, objects in zip(records, truth, strict=True):
        for obj in objects:
            assert overlap(record["detections"], obj["label"], obj["box"]) > 0.5, (
                record["index"], obj["label"])


def test_exported_frozen_graph_works_with_the_seed_constructor(centernet, tmp_path):
    pb = tmp_path / "frozen_inference_graph.pb"
    assert main(["models", "export", "centernet", "--format", "frozen-graph", "-o",
                 str(pb)]) == 0
    ei_predictor = EIPredictor(
        model_dir=str(pb),
        input_names={"inputs": "image_tensor:0"},
        output_names={"detections_scores": "detection_scores:0",
                      "detection_classes": "detection_classes:0",
                      "detection_boxes": "detection_boxes:0",
                      "num_detections": "num_detections:0"},
        use_ei=True)
    outputs = ei_predictor({"inputs": skimage_photo("astronaut")[None]})
    assert outputs["detection_classes"][0, 0] == 1  # person, 1-based COCO label-map id
    assert outputs["detections_scores"][0, 0] > 0.5
    ymin, xmin, ymax, xmax = outputs["detection_boxes"][0, 0]
    assert box_iou([xmin * 512, ymin * 512, xmax * 512, ymax * 512], [0, 0, 370, 512]) > 0.7


def test_default_model_batches(centernet):
    p = EIPredictor(centernet)
    photo = skimage_photo("astronaut")
    one = p({"input_tensor": photo[None]})
    four = p({"input_tensor": np.repeat(photo[None], 4, axis=0)})
    assert four["detection_boxes"].shape[0] == 4
    for i in range(4):
        np.testing.assert_allclose(four["detection_scores"][i], one["detection_scores"][0],
                                   atol=1e-4)


def test_models_cli_list_and_path(centernet, capsys):
    assert main(["models", "path", "centernet"]) == 0
    assert capsys.readouterr().out.strip() == str(centernet)
    assert main(["models", "list"]) == 0
    assert "centernet" in capsys.readouterr().out


def test_tflite_fast_path_finds_the_same_boxes_as_the_saved_model(photo_run):
    from vidstream import Detector, VideoSource

    fast, plain = Detector(threshold=0.25), Detector(threshold=0.25, backend="tf")
    fast.open()
    plain.open()
    assert fast.predictor.format == "tflite" and plain.predictor.format == "saved_model"
    src = VideoSource(photo_run["clip"])
    src.open()
    matched = total = 0
    for frame in src.frames():
        a = fast.process(frame).detections
        for d in plain.process(frame).detections:
            total += 1
            matched += any(x.label == d.label and box_iou(x.box, d.box) >= 0.9 for x in a)
    src.close()
    assert total >= 40
    assert matched / total >= 0.99, (matched, total)


def test_batched_detector_matches_batch_one(photo_run):
    from vidstream import Detector, Pipeline, VideoSource

    def boxes(batch_size):
        out = []
        for frame in Pipeline(VideoSource(photo_run["clip"], max_frames=8),
                              [Detector(batch_size=batch_size)]):
            out.append([(d.label, d.box) for d in frame.detections])
        return out

    one, four = boxes(1), boxes(4)
    assert len(one) == len(four) == 8
    for a, b in zip(one, four, strict=True):
        assert [x[0] for x in a] == [x[0] for x in b]
        for (_, ba), (_, bb) in zip(a, b, strict=True):
            assert box_iou(ba, bb) > 0.99


def test_the_detector_runs_an_eipredictor_on_tf_lite_for_the_default_model_on_cpu(photo_run):
    # the product's promise: whatever the backend, the detector stage runs an EIPredictor
    from vidstream import Detector, VideoSource
    from vidstream.predictor import gpu_names

    if gpu_names():
        pytest.skip("a GPU is visible: auto picks TensorFlow there")
    detector = Detector(threshold=0.25)
    source = VideoSource(photo_run["clip"], max_frames=2)
    try:
        detector.open(source.open())  # warms up at the run's size, in this (the main) thread
        frames = [detector.process(f) for f in source.frames()]
    finally:
        source.close()
        detector.close()
    p = detector.predictor
    assert isinstance(p, EIPredictor)
    assert (p.format, p.thread_safe, p.resize, p.input_size) == ("tflite", False, "letterbox",
                                                                 (512, 512))
    assert p.device.startswith("CPU (TF Lite")
    assert "person" in frames[0].detections.labels
    assert detector.describe()["model_format"] == "tflite"


def test_the_write_up_names_work_on_the_tf_lite_backend(centernet):
    from make_clip import skimage_photo

    ei_predictor = EIPredictor(
        model_dir=str(centernet),
        input_names={"inputs": "image_tensor:0"},
        output_names={"detections_scores": "detection_scores:0",
                      "detection_classes": "detection_classes:0",
                      "detection_boxes": "detection_boxes:0",
                      "num_detections": "num_detections:0"},
        use_ei=True, backend="tflite")
    outputs = ei_predictor({"inputs": skimage_photo("astronaut")[None]})
    assert set(outputs) == {"detections_scores", "detection_classes", "detection_boxes",
                            "num_detections"}
    assert outputs["detection_classes"][0, 0] == 1 and outputs["detections_scores"][0, 0] > 0.5
