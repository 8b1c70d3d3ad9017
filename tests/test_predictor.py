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
    import vidstream.tfruntime

    vidstream.tfruntime._warned_no_gpu = False
    with caplog.at_level("WARNING", logger="vidstream"):
        p = EIPredictor(tiny_model, use_ei=True)
        EIPredictor(tiny_model, use_ei=True)
    assert p.device == "CPU (no GPU found)"
    warnings = [r.message for r in caplog.records if "no GPU" in r.message]
    assert warnings == ["no GPU is visible to TensorFlow: the model runs on the CPU"]
    with pytest.raises(ModelError, match="no GPU is visible"):
        EIPredictor(tiny_model, device="gpu")


# -- backends and the registry ------------------------------------------------------------------
def test_an_unknown_backend_lists_the_known_ones(tiny_model):
    from vidstream import ConfigError

    with pytest.raises(ConfigError, match=r"unknown backend 'onnx'; known backends: auto, tf, "
                                          r"tflite") as e:
        EIPredictor(tiny_model, backend="onnx")
    assert e.value.param == "backend"


def test_a_backend_that_cannot_load_the_model_says_which_can(tiny_model):
    with pytest.raises(ModelError, match="the tflite backend loads .*TF Lite.*, not this "
                                         "model; backends that load it: tf") as e:
        EIPredictor(tiny_model, backend="tflite")
    assert e.value.param == "backend"
    junk = tiny_model.parent / "nothing.bin"
    junk.write_bytes(b"?")
    with pytest.raises(ModelNotFoundError, match="not a model any backend loads.*SavedModel"):
        EIPredictor(junk)


def test_a_registered_backend_is_picked_by_its_reference():
    from vidstream import backends
    from vidstream.backends.base import ModelBackend, check_feed, map_names

    class Echo(ModelBackend):
        format = "echo"
        device = "nowhere"
        thread_safe = False

        def __init__(self, ref, options):
            self.model_dir = ref
            self.model_inputs, self.model_outputs = ["x"], ["y"]
            self.input_specs = {"x": ((None, 2), np.dtype(np.float32))}
            self.bind(None, None)

        def bind(self, input_names, output_names):
            self.inputs = map_names(input_names, self.model_inputs, "input", self.model_dir)
            self.outputs = map_names(output_names, self.model_outputs, "output", self.model_dir)

        def __call__(self, feed):
            check_feed(feed, self.inputs)
            return {k: np.asarray(feed[next(iter(self.inputs))]) * 2 for k in self.outputs}

    entry = backends.register("echo", lambda ref: ref.startswith("echo://"), Echo,
                              kind="an echo:// URI")
    try:
        assert "echo" in backends.backend_names()
        p = EIPredictor("echo://double", {"a": "x:0"}, {"b": "y"})
        assert (p.format, p.device, p.thread_safe, p.warmup_s > 0) == ("echo", "nowhere",
                                                                        False, True)
        assert p({"a": np.ones((1, 2), np.float32)})["b"].tolist() == [[2.0, 2.0]]
        assert isinstance(p, backends.Predictor)
    finally:
        backends.unregister(entry)
    assert "echo" not in backends.backend_names()
    with pytest.raises(ModelNotFoundError, match="not a model any backend loads"):
        EIPredictor("echo://double")


# -- model metadata -------------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "cause"), [
    ('{"tflite": "centernet.tflite",', "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"tflite": 3}', "'tflite' is 3, expected str"),
    ('{"input_size": [512]}', "'input_size' is \\[512\\], expected \\[width, height\\]"),
    ('{"resize": "squash"}', "'resize' is 'squash', expected letterbox or stretch"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_corrupt_model_metadata_is_an_error_naming_the_file(content, cause, tiny_model,
                                                            tmp_path):
    # regression: a damaged vidstream.json read as {}: TF Lite silently became TensorFlow
    # and letterbox became stretch
    import shutil

    from vidstream.detector import load_predictor

    model = tmp_path / "converted"
    shutil.copytree(tiny_model, model)
    meta = model / "vidstream.json"
    meta.write_bytes(content if isinstance(content, bytes) else content.encode())
    for load in (lambda: EIPredictor(model), lambda: load_predictor(str(model))):
        with pytest.raises(ModelError, match=f"{meta}: corrupt model metadata: {cause}"):
            load()


def test_quiet_stderr_redirects_only_in_the_main_thread(capfd):
    import os
    import threading

    from vidstream.tfruntime import quiet_stderr

    def chatter(text):
        with quiet_stderr():
            os.write(2, text.encode())

    worker = threading.Thread(target=chatter, args=("from a worker\n",))
    worker.start()
    worker.join()
    chatter("from the main thread\n")
    err = capfd.readouterr().err
    # fd 2 is the whole process's: a worker hiding it would hide the dashboard too
    assert "from a worker" in err
    assert "from the main thread" not in err


@pytest.mark.parametrize("module", ["vidstream.backends", "vidstream.backends.base",
                                    "vidstream.backends.tflite", "vidstream.models",
                                    "vidstream.models.registry", "vidstream.models.metadata",
                                    "vidstream.models.spec", "vidstream.tfruntime"])
def test_subpackage_docstring_examples_run(module):
    # tests/test_api.py runs the top-level modules' examples; these live one level down
    import doctest
    import importlib
    import io

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in doctest.DocTestFinder(exclude_empty=True).find(importlib.import_module(module),
                                                               module):
        runner.run(test, out=out.write)
    assert runner.summarize(verbose=False).failed == 0, out.getvalue()
