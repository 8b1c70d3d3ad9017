"""EIPredictor on models the tests export themselves: a SavedModel and a frozen graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinymodel import red_square_frames

from vidstream import EIPredictor, ModelError, ModelNotFoundError, TensorNameError
from vidstream.models import frozen_od_graph

SEED_OUTPUTS = {
    "detections_scores": "detection_scores:0",
    "detection_classes": "detection_classes:0",
    "detection_boxes": "detection_boxes:0",
    "num_detections": "num_detections:0",
}


@pytest.fixture(scope="module")
def frozen_graph(tiny_model: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("frozen") / "frozen_inference_graph.pb"
    path.write_bytes(frozen_od_graph(tiny_model).SerializeToString())
    return path


def one_frame():
    image, box = next(red_square_frames(1, 1920, 1080, size=100))
    return image[None], box


def test_seed_constructor_word_for_word_on_a_frozen_graph(frozen_graph):
    PATH_TO_FROZEN_GRAPH = str(frozen_graph)
    ei_predictor = EIPredictor(
        model_dir=PATH_TO_FROZEN_GRAPH,
        input_names={"inputs": "image_tensor:0"},
        output_names={"detections_scores": "detection_scores:0",
                      "detection_classes": "detection_classes:0",
                      "detection_boxes": "detection_boxes:0",
                      "num_detections": "num_detections:0"},
        use_ei=True)
    frame, (x1, y1, x2, y2) = one_frame()
    assert frame.shape == (1, 1080, 1920, 3) and frame.dtype == np.uint8
    outputs = ei_predictor({"inputs": frame})
    assert set(outputs) == set(SEED_OUTPUTS)
    assert all(isinstance(v, np.ndarray) for v in outputs.values())
    assert outputs["num_detections"][0] == 1
    assert outputs["detections_scores"][0, 0] == pytest.approx(0.9)
    assert outputs["detection_classes"][0, 0] == 3
    np.testing.assert_allclose(outputs["detection_boxes"][0, 0],
                               [y1 / 1080, x1 / 1920, y2 / 1080, x2 / 1920], atol=1e-6)
    assert ei_predictor.format == "frozen_graph"
    assert ei_predictor.device.startswith(("CPU", "GPU"))
    assert ei_predictor.load_s > 0 and ei_predictor.warmup_s > 0


def test_saved_model_by_signature_names(tiny_model):
    p = EIPredictor(tiny_model, {"inputs": "input_tensor"},
                    {"boxes": "detection_boxes", "n": "num_detections"})
    frame, (x1, y1, x2, y2) = one_frame()
    out = p({"inputs": frame})
    assert set(out) == {"boxes", "n"}
    np.testing.assert_allclose(out["boxes"][0, 0], [y1 / 1080, x1 / 1920, y2 / 1080, x2 / 1920],
                               atol=1e-6)


def test_saved_model_accepts_tensor_style_names(tiny_model):
    p = EIPredictor(tiny_model, {"inputs": "input_tensor:0"}, SEED_OUTPUTS)
    out = p({"inputs": one_frame()[0]})
    assert out["num_detections"][0] == 1


def test_saved_model_defaults_to_all_signature_names(tiny_model):
    p = EIPredictor(tiny_model)
    assert set(p.inputs) == {"input_tensor"}
    out = p({"input_tensor": one_frame()[0]})
    assert {"detection_boxes", "detection_scores", "detection_classes",
            "num_detections"} <= set(out)


@pytest.mark.parametrize("kind", ["saved_model", "frozen_graph"])
def test_batches_of_frames(kind, tiny_model, frozen_graph):
    if kind == "saved_model":
        p = EIPredictor(tiny_model, {"inputs": "input_tensor"}, SEED_OUTPUTS)
    else:
        p = EIPredictor(frozen_graph, {"inputs": "image_tensor:0"}, SEED_OUTPUTS)
    frames = list(red_square_frames(4, 320, 240))
    batch = np.stack([f for f, _ in frames])
    out = p({"inputs": batch})
    assert out["detection_boxes"].shape[0] == 4
    for i, (_, (x1, _y1, x2, _y2)) in enumerate(frames):
        np.testing.assert_allclose(out["detection_boxes"][i, 0, [1, 3]], [x1 / 320, x2 / 320],
                                   atol=1e-6)


def test_wrong_input_name_lists_the_names_the_model_has(frozen_graph, tiny_model):
    with pytest.raises(TensorNameError, match=r"no input tensor 'images:0'.*image_tensor:0"):
        EIPredictor(frozen_graph, {"inputs": "images:0"}, SEED_OUTPUTS)
    with pytest.raises(TensorNameError, match=r"no output 'boxes'.*detection_boxes"):
        EIPredictor(tiny_model, {"inputs": "input_tensor"}, {"b": "boxes"})


def test_wrong_output_name_lists_outputs(frozen_graph):
    with pytest.raises(TensorNameError, match=r"no output tensor 'scores:0'.*detection_scores"):
        EIPredictor(frozen_graph, {"inputs": "image_tensor:0"}, {"s": "scores:0"})


def test_wrong_call_keys_are_named(tiny_model):
    p = EIPredictor(tiny_model, {"inputs": "input_tensor"}, SEED_OUTPUTS)
    with pytest.raises(TensorNameError, match="expected the keys.*inputs"):
        p({"images": one_frame()[0]})


def test_missing_and_bogus_models(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such model"):
        EIPredictor(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="no saved_model.pb"):
        EIPredictor(tmp_path)
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"this is not a graph")
    with pytest.raises(ModelError, match="not a frozen graph"):
        EIPredictor(junk, {"inputs": "image_tensor:0"}, SEED_OUTPUTS)


def test_cpu_is_said_clearly_when_no_gpu(tiny_model, caplog):
    import vidstream.predictor as predictor

    if predictor.gpu_names():
        pytest.skip("a GPU is visible")
    predictor._warned_no_gpu = False
    with caplog.at_level("WARNING", logger="vidstream"):
        p = EIPredictor(tiny_model, use_ei=True)
        EIPredictor(tiny_model, use_ei=True)
    assert p.device == "CPU (no GPU found)"
    warnings = [r.message for r in caplog.records if "no GPU" in r.message]
    assert warnings == ["no GPU is visible to TensorFlow: the model runs on the CPU"]
    with pytest.raises(ModelError, match="no GPU is visible"):
        EIPredictor(tiny_model, device="gpu")
