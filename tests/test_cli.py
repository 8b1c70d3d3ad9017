"""The command line: help, refusals before work, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest
from media import red_square_clip

from vidstream.cli import main


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "cli.mp4"
    red_square_clip(path, frames=20, audio=True)
    return path


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "vidstream", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_every_detect_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--output", "--overwrite", "--detections", "--summary", "--model",
                   "--threshold", "--batch-size", "--preset", "--instance", "--price-per-hour",
                   "--no-dashboard", "--fragmented", "--max-pixels", "--reconnect"):
        assert option in out


def test_detect_with_own_model_writes_everything(clip, tmp_path, tiny_model, capsys):
    out, jl, sj = tmp_path / "o.mp4", tmp_path / "d.jsonl", tmp_path / "s.json"
    code = main(["detect", str(clip), "-o", str(out), "--model", str(tiny_model),
                 "--detections", str(jl), "--summary", str(sj), "--instance", "c5.4xlarge",
                 "--no-dashboard"])
    assert code == 0
    summary = json.loads(sj.read_text())
    assert summary["frames"] == 20
    for key in ("wall_s", "fps", "model_load_s"):
        assert summary[key] > 0
    assert set(summary["latency_ms"]) >= {"p50", "p95"}
    assert set(summary["stages"]) == {"decode", "detect", "sink"}
    for stage in summary["stages"].values():
        assert {"items", "busy_s", "starved_s", "blocked_s", "fps"} <= set(stage)
        assert stage["items"] == 20
    cost = summary["cost"]
    assert cost["instance"] == "c5.4xlarge" and cost["usd_per_hour"] == 0.68
    # the cost is computed from the unrounded rate; the summary's fps is rounded to 3 decimals,
    # so the two agree within that rounding (issue 11: dollars were rounded to 4 decimals,
    # which failed here above ~378 fps)
    assert cost["usd_per_100k_inferences"] == pytest.approx(
        0.68 * 100_000 / (3600 * summary["fps"]), rel=0.0005 / summary["fps"] + 1e-12)
    assert not cost["reference"]
    assert cost["usd_total"] > 0
    assert len(jl.read_text().splitlines()) == 20
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20
    text = capsys.readouterr().err
    assert "vidstream summary" in text and "per 100k inferences" in text


def test_existing_output_is_refused_before_any_work(clip, tmp_path, tiny_model):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    r = run_cli("detect", clip, "-o", out, "--model", tiny_model, "--no-dashboard")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"vidstream: error: {out}: already exists (use -y to overwrite)")
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("case", ["missing", "text", "bad-model", "bad-dir", "no-npm"])
def test_errors_are_one_line_with_the_cause(case, clip, tmp_path, tiny_model, capsys,
                                            monkeypatch):
    out = tmp_path / "o.mp4"
    args = ["detect", str(clip), "-o", str(out), "--model", str(tiny_model), "--no-dashboard"]
    expected = ""
    if case == "missing":
        args[1] = str(tmp_path / "missing.mp4")
        expected = "missing.mp4: no such file"
    elif case == "text":
        txt = tmp_path / "readme.mp4"
        txt.write_text("hello\n" * 100)
        args[1] = str(txt)
        expected = "readme.mp4: not a readable video"
    elif case == "bad-model":
        args[5] = str(tmp_path / "no-model")
        expected = "no-model: no such model"
    elif case == "bad-dir":
        args[3] = str(tmp_path / "missing-dir" / "o.mp4")
        expected = "does not exist"
    elif case == "no-npm":
        monkeypatch.setenv("VIDSTREAM_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("PATH", str(tmp_path))
        args[5] = "centernet"
        expected = "npm was not found"
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("vidstream: error: ")
    assert expected in err[-1]
    assert not out.exists()


def test_traceback_free_exit_code_from_a_subprocess(tmp_path):
    r = run_cli("detect", tmp_path / "none.mp4", "-o", tmp_path / "o.mp4", "--no-dashboard")
    assert r.returncode == 1
    assert r.stderr.strip() == f"vidstream: error: {tmp_path / 'none.mp4'}: no such file"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", "x.mp4", "--batch-size", "0"])
    assert e.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_unknown_instance_suggests_the_closest_known_ones(clip, tmp_path, tiny_model, capsys):
    code = main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--instance", "c5.xlarg", "--no-dashboard"])
    assert code == 1
    err = capsys.readouterr().err
    assert "unknown instance 'c5.xlarg'; did you mean c5.xlarge" in err
    assert "--catalog FILE adds more" in err and not (tmp_path / "o.mp4").exists()


def test_waiting_for_a_paced_source_is_starving_not_work(clip, tmp_path, tiny_model):
    # --realtime reads at the clip's own rate, as a live sender would deliver it: the decoder
    # mostly waits, and must not be named the bottleneck for it.
    summary = tmp_path / "s.json"
    assert main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--realtime", "--summary", str(summary), "--no-dashboard", "-q"]) == 0
    s = json.loads(summary.read_text())
    decode = s["stages"]["decode"]
    assert decode["starved_s"] > 0.3  # 20 frames at 29.97 fps: about 0.6 s of waiting
    assert decode["busy_share"] < 0.5


# -- one source of defaults --------------------------------------------------------------------
def help_defaults(monkeypatch, capsys, *command) -> dict[str, str]:
    """``{dest: "default as --help shows it"}`` for every option of a setting in DEFAULTS."""
    import re

    from vidstream.settings import DEFAULTS

    monkeypatch.setenv("COLUMNS", "1000")  # no help text wraps
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    # an option starts a line; a long one puts its help on the next, indented further
    text = re.sub(r"\n {6,}", " ", capsys.readouterr().out)
    found = {}
    for line in text.splitlines():
        m = re.match(r"\s+(?:-\w(?: \S+)?, )?--([\w-]+).*\(default: ([^)]*)\)$", line)
        if m and hasattr(DEFAULTS, m.group(1).replace("-", "_")):
            found[m.group(1).replace("-", "_")] = m.group(2)
    return found


def test_detect_help_shows_the_defaults_of_the_settings_and_the_api(monkeypatch, capsys):
    import inspect

    from vidstream import Detector, Pipeline, RunConfig, VideoSource, VideoWriter
    from vidstream.settings import DEFAULTS

    shown = help_defaults(monkeypatch, capsys, "detect")
    assert set(shown) >= {"model", "threshold", "batch_size", "device", "backend", "codec",
                          "preset", "max_pixels", "max_decode_errors", "queue_size",
                          "reconnect", "reconnect_delay", "stall_timeout", "progress_interval"}
    config = RunConfig()
    from vidstream.cli.common import pixels

    def parsed(dest, text):  # --max-pixels shows its default as WIDTHxHEIGHT
        return str(pixels(text)) if dest == "max_pixels" else text

    assert shown["max_pixels"] == "8192x4320"
    for dest, text in shown.items():
        assert parsed(dest, text) == str(getattr(DEFAULTS, dest)), dest
        if dest != "progress_interval":  # a display setting, not part of a run
            assert parsed(dest, text) == str(getattr(config, dest)), dest

    def api(cls, name):
        return inspect.signature(cls).parameters[name].default

    # the API's own defaults, where the command line has the same setting
    same = {"threshold": api(Detector, "threshold"), "batch_size": api(Detector, "batch_size"),
            "backend": api(Detector, "backend"), "codec": api(VideoWriter, "codec"),
            "preset": api(VideoWriter, "preset"), "max_pixels": api(VideoSource, "max_pixels"),
            "max_decode_errors": api(VideoSource, "max_decode_errors"),
            "reconnect": api(VideoSource, "reconnect"),
            "reconnect_delay": api(VideoSource, "reconnect_delay"),
            "stall_timeout": api(VideoSource, "stall_timeout"),
            "queue_size": api(Pipeline, "capacity")}
    for dest, default in same.items():
        assert parsed(dest, shown[dest]) == str(default), dest


def test_bench_help_shows_the_settings_defaults(monkeypatch, capsys):
    from vidstream.settings import DEFAULTS

    shown = help_defaults(monkeypatch, capsys, "bench")
    assert set(shown) >= {"preset", "threshold", "backend", "queue_size"}
    for dest in ("preset", "threshold", "backend", "queue_size"):
        assert shown[dest] == str(getattr(DEFAULTS, dest)), dest


def test_every_run_setting_has_a_detect_flag_of_the_same_name():
    # cmd_detect copies options into RunConfig by name: a field without a flag, or a flag
    # renamed away from its field, would silently keep the default
    import dataclasses

    from vidstream import RunConfig
    from vidstream.cli import build_parser

    args = vars(build_parser().parse_args(["detect", "a.mp4"]))
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    # video comes from -o/--no-video; the rest are pipeline-file settings only
    # inputs (and their [[input]] options) come from INPUT... and --inputs FILE
    assert fields - set(args) == {"video", "leaky", "decoder_threads", "extra", "inputs",
                                  "input_options"}


def test_a_changed_default_reaches_the_command(monkeypatch):
    import dataclasses

    from vidstream import config
    from vidstream.cli import build_parser, detect

    changed = dataclasses.replace(detect._DEFAULT, threshold=0.7, queue_size=3)
    monkeypatch.setattr(detect, "_DEFAULT", changed)
    cfg = detect.config_from_args(build_parser().parse_args(["detect", "a.mp4"]))
    assert (cfg.threshold, cfg.queue_size) == (0.7, 3)
    assert isinstance(cfg, config.RunConfig)


# -- errors name flags, the library names parameters -------------------------------------------
def test_library_errors_name_the_flag_of_the_command(tmp_path, capsys):
    from vidstream.errors import FrameTooLargeError, OutputError

    assert str(FrameTooLargeError("big", param="max_pixels")) == "big (see max_pixels)"
    from vidstream.cli.errors import error_line

    assert error_line(FrameTooLargeError("big", param="max_pixels")) == "big (see --max-pixels)"
    assert error_line(OutputError("o: exists", param="overwrite")) == (
        "o: exists (use -y to overwrite)")
    assert error_line(ValueError("plain")) == "plain"
    # detect names its flag; run names the pipeline file's key, or its own flag
    assert main(["detect", "a.mp4", "-o", str(tmp_path / "o.mp4"), "--instance", "z9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vidstream: error: unknown instance 'z9'; ")
    assert err.endswith(" (see --instance)")
    mine = tmp_path / "mine.toml"
    mine.write_text('[input]\nuri = "a.mp4"\n[output]\nvideo = "o.mp4"\n[cost]\n'
                    'instance = "z9"\n')
    assert main(["run", str(mine), "--output", str(tmp_path / "o.mp4")]) == 1
    assert capsys.readouterr().err.strip().endswith(" (see cost.instance)")
    mine.write_text('[output]\nvideo = "o.mp4"\n')
    assert main(["run", str(mine)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"vidstream: error: {mine}: no input: expected input.uri in the file (see --input)")


def test_every_param_the_library_names_has_a_flag():
    import re
    from pathlib import Path

    import vidstream
    from vidstream.cli import build_parser
    from vidstream.cli.errors import _ACTIONS, _ALIASES, _API_ONLY

    root = Path(vidstream.__file__).parent
    params = set()
    for path in root.rglob("*.py"):
        params |= set(re.findall(r"""param=["'](\w+)["']""", path.read_text()))
    assert {"overwrite", "instance", "price_per_hour", "catalog"} <= params
    flags = set(_ACTIONS) | set(_ALIASES) | _API_ONLY
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in sub.choices.values():
        flags |= set(command.get_default("flags") or {})
        for action in command._actions:
            if action.dest == "models_command":
                for leaf in action.choices.values():
                    flags |= set(leaf.get_default("flags") or {})
    assert params <= flags, params - flags


def test_the_library_never_imports_the_command_line():
    import ast
    from pathlib import Path

    import vidstream

    root = Path(vidstream.__file__).parent
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [a.name for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("argparse", "rich"), (path, name)
                assert name not in ("cli", "vidstream.cli") and ".cli" not in name, (path, name)


# -- issue 11: hardening of the command line ----------------------------------------------
@pytest.mark.parametrize("args", [
    # item 7: every float option finite and in range; out-of-range values are usage errors
    ["--threshold", "-1"], ["--threshold", "nan"], ["--threshold", "1.5"],
    ["--stall-timeout", "nan"], ["--stall-timeout", "inf"], ["--stall-timeout", "-1"],
    ["--stall-timeout", "0"], ["--reconnect-delay", "nan"], ["--reconnect", "-1"],
    ["--price-per-hour", "nan"], ["--price-per-hour", "-1"], ["--progress-interval", "inf"],
    ["--max-decode-errors", "-1"], ["--crf", "99"], ["--max-pixels", "0x10"],
    # item 10: a queue of a billion frames is refused, not allocated
    ["--queue-size", "1000000000"],
])
def test_out_of_range_options_are_usage_errors(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", str(tmp_path / "none.mp4"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"vidstream: error: argument {args[0]}: "), err


@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--queue-size", "0"],
                                  ["--price-per-hour", "inf"]])
def test_bench_options_are_checked_too(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", str(tmp_path / "none.mp4"), *args])
    assert e.value.code == 2


def test_api_config_names_the_key_for_nan_and_huge_values():
    from vidstream.config import RunConfig, validate
    from vidstream.errors import ConfigError

    for change, key in (({"stall_timeout": float("nan")}, "stall_timeout"),
                        ({"stall_timeout": float("inf")}, "stall_timeout"),
                        ({"reconnect_delay": float("nan")}, "reconnect_delay"),
                        ({"threshold": float("nan")}, "threshold"),
                        ({"price_per_hour": float("nan")}, "price_per_hour"),
                        ({"queue_size": 10**9}, "queue_size")):
        with pytest.raises(ConfigError, match=f"options: {key} = "):
            validate(RunConfig("a.mp4", video="o.mp4", **change))


def test_sigterm_while_the_model_loads_is_an_interrupt(clip, tmp_path):
    """Issue 11 item 10: SIGTERM before the pipeline's handlers exist exited 143, silently."""
    import signal
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time
        import vidstream.detector

        def slow_load(*args, **kwargs):
            print("loading the model", file=sys.stderr, flush=True)
            time.sleep(60)

        vidstream.detector.load_predictor = slow_load
        from vidstream.cli import run
        sys.argv = ["vidstream", "detect", {str(clip)!r}, "-o", {str(tmp_path / "o.mp4")!r},
                    "--no-dashboard"]
        run()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "loading the model" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert code == 130, rest
    assert rest.strip().splitlines()[-1] == "vidstream: interrupted"


def test_a_run_without_an_instance_is_priced_at_the_reference_rate(clip, tmp_path, tiny_model,
                                                                   capsys):
    """Issue 11 item 13: no --instance used to mean "cost": null."""
    from vidstream.cost import lookup
    from vidstream.settings import DEFAULTS

    sj = tmp_path / "s.json"
    assert main(["detect", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_model),
                 "--summary", str(sj), "--no-dashboard"]) == 0
    cost = json.loads(sj.read_text())["cost"]
    ref = lookup(DEFAULTS.reference_instance)
    assert cost["instance"] == DEFAULTS.reference_instance and cost["reference"] is True
    assert cost["usd_per_hour"] == ref.usd_per_hour and cost["usd_total"] > 0
    assert cost["usd_per_100k_inferences"] > 0
    assert "reference rate" in cost["note"] and "--instance" in cost["note"]
    err = capsys.readouterr().err
    assert f"priced at the reference rate of {DEFAULTS.reference_instance}" in err
    assert "this machine's speed at that instance's rate" in err


def test_current_instances_price_a_run(clip, tmp_path, tiny_model):
    """Issue 11 item 14: --instance c5.xlarge was an error."""
    sj = tmp_path / "s.json"
    assert main(["detect", str(clip), "--no-video", "--summary", str(sj), "--model",
                 str(tiny_model), "--instance", "c5.xlarge", "--no-dashboard", "-q"]) == 0
    cost = json.loads(sj.read_text())["cost"]
    assert (cost["instance"], cost["usd_per_hour"], cost["region"]) == (
        "c5.xlarge", 0.17, "us-east-1")


def test_masked_everywhere_the_command_line_speaks(capsys):
    """Issue 11 item 2: error lines, log lines (reconnect warnings) and the title."""
    import logging

    from vidstream.cli import _setup_logging
    from vidstream.cli.detect import _title
    from vidstream.cli.errors import error_line
    from vidstream.config import RunConfig
    from vidstream.errors import SourceError

    url = "rtsp://admin:p@ss@word@cam/x?token=t0k"
    assert "ss@word" not in error_line(SourceError(f"{url}: lost: '{url}'"))
    assert "t0k" not in error_line(ValueError(f"cannot open {url}"))
    _setup_logging(quiet=False)
    logging.getLogger("vidstream").warning("%s: stream lost; reconnecting", url)
    err = capsys.readouterr().err
    shown = "rtsp://***@cam/x?token=***"
    assert err.strip() == f"vidstream: warning: {shown}: stream lost; reconnecting"
    assert _title(RunConfig(url, video="o.mp4")) == f"vidstream  {shown} -> o.mp4"


def test_options_read_alike(monkeypatch, capsys):
    """Issue 11 item 16: metavars, one spelling of --threads, readable defaults."""
    import re

    from vidstream.cli import build_parser

    monkeypatch.setenv("COLUMNS", "1000")
    for command in (["detect"], ["run"], ["bench"], ["report"], ["models", "pull"],
                    ["models", "path"], ["models", "export"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        # no metavar that is just the option's name in capitals (--threshold THRESHOLD)
        for flag, metavar in re.findall(r"--([\w-]+) ([A-Z][A-Z_]+)\b", out):
            assert metavar != flag.upper().replace("-", "_"), (command, flag)
        assert "--tf-threads" not in out, command  # the hidden alias
        if command[0] == "models" and command[1] != "export":
            assert re.search(r"\n  name +\S", out), command  # the positional is explained
    parser = build_parser()
    a = parser.parse_args(["detect", "x.mp4", "--tf-threads", "3"])
    b = parser.parse_args(["detect", "x.mp4", "--threads", "3"])
    assert a.tf_threads == b.tf_threads == 3
    assert parser.parse_args(["bench", "x.mp4", "--tf-threads", "2,4"]).threads == [2, 4]
    # bench measures what detect would run: auto, not the CPU on a GPU machine
    assert parser.parse_args(["bench", "x.mp4"]).device == ["auto"]
    assert parser.parse_args(["detect", "x.mp4", "--max-pixels", "1920x1080"]).max_pixels == (
        1920 * 1080)


def test_run_overrides_the_model_and_the_price(monkeypatch, tmp_path):
    from vidstream.cli import detect

    seen = {}
    def execute(cfg, *args, **kwargs):
        seen["cfg"] = cfg
        return 0

    monkeypatch.setattr(detect, "execute", execute)
    mine = tmp_path / "mine.toml"
    mine.write_text('[input]\nuri = "a.mp4"\n[output]\nvideo = "o.mp4"\n[cost]\n'
                    'instance = "c5.4xlarge"\n')
    assert main(["run", str(mine), "--model", "my-model", "--instance", "g4dn.xlarge",
                 "--price-per-hour", "0.3"]) == 0
    cfg = seen["cfg"]
    assert (cfg.model, cfg.instance, cfg.price_per_hour) == ("my-model", "g4dn.xlarge", 0.3)


# -- issue 11 item 15: no noise on install or run, no hidden download ---------------------------
def test_package_data_is_in_a_package():
    """setuptools warned ~35 lines that vidstream.data is data but not a listed package."""
    from pathlib import Path

    from setuptools.config.setupcfg import read_configuration

    root = Path(__file__).parent.parent
    packages = set(read_configuration(root / "setup.cfg")["options"]["packages"])
    for d in (root / "vidstream").rglob("*"):
        if d.is_dir() and d.name != "__pycache__" and any(
                f.is_file() and f.suffix != ".pyc" for f in d.iterdir()):
            assert ".".join(d.relative_to(root).parts) in packages, d


def test_no_gpu_warning_on_the_intended_cpu_path(monkeypatch, caplog):
    from vidstream import tfruntime

    monkeypatch.setattr(tfruntime, "gpu_names", lambda: [])
    monkeypatch.setattr(tfruntime, "_warned_no_gpu", False)
    with caplog.at_level("WARNING", logger="vidstream"):
        assert tfruntime.resolve_device(use_ei=False, device="auto")[0] == "/CPU:0"
    assert not caplog.records  # the default, --device auto: the CPU is a fine place to run
    with caplog.at_level("WARNING", logger="vidstream"):
        tfruntime.resolve_device(use_ei=True, device=None)  # the write-up's "an accelerator"
    assert [r.getMessage() for r in caplog.records] == [
        "no GPU is visible to TensorFlow: the model runs on the CPU"]


def test_make_clip_downloads_nothing(monkeypatch, tmp_path):
    import make_clip

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"make_clip started a process: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    monkeypatch.setenv("VIDSTREAM_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    _, sprites = make_clip.scene_sprites("traffic", 320, 180)
    assert [s.name for s in sprites] == ["motorcycle"]
