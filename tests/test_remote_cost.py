"""What a client of a shared server costs: --accelerator-instance/--accelerator-share on detect,
run and bench, the summary's ``cost.accelerator``, and report's one-machine-or-shared verdict.

The server here is the in-process TF Serving stand-in (it reports no server-wide counts, so an
``auto`` share falls back to the whole accelerator); tests/test_triton.py prices against a real
Triton server's counts.
"""

from __future__ import annotations

import json

import pytest
from media import red_square_clip
from tfserving_server import TFServingStandIn

from vidstream.bench.report import Run, compare_deployments, load_runs, recommend
from vidstream.cli import main
from vidstream.config import RunConfig, validate
from vidstream.cost import Accelerator, CostEstimate, Price, lookup
from vidstream.errors import ConfigError
from vidstream.remote_cost import SharedPricing, price_now, run_pricing

pytest.importorskip("tensorflow_serving")

from test_remote import find_red  # after the skip: it needs tensorflow_serving

CLIENT = Price("c7i.large", 0.08925)


def test_shared_pricing_resolves_auto_from_the_servers_count_and_fixed_shares_as_given():
    g5 = lookup("g5.xlarge")
    auto = SharedPricing(CLIENT, g5, "auto")
    p = auto.price({"frames": 30, "server": {"inference_count": 120}})
    assert p.accelerator == Accelerator("g5.xlarge", g5.usd_per_hour, 0.25,
                                        "auto: 30 of 120 server inferences")
    assert p.usd_per_hour == pytest.approx(CLIENT.usd_per_hour + 0.25 * g5.usd_per_hour)
    # a count read a moment before this client's last frames: never more than the whole
    assert auto.price({"frames": 30, "server": {"inference_count": 29}}).accelerator.share == 1
    # no server-wide counts (TF Serving) or nothing sent yet: the whole accelerator
    for remote in (None, {"frames": 30, "server": None}, {"frames": 0, "server": None}):
        a = auto.price(remote).accelerator
        assert a.share == 1.0 and "no server counts" in a.basis
    fixed = SharedPricing(CLIENT, g5, "0.1").price({"frames": 30, "server": None})
    assert (fixed.accelerator.share, fixed.accelerator.basis) == (0.1, "fixed")
    assert fixed.name == "c7i.large + 10% of g5.xlarge"
    # without an accelerator instance a run is priced as the client alone
    assert run_pricing(CLIENT, None) is CLIENT
    assert price_now(CLIENT, {"remote": {"frames": 3}}) is CLIENT
    with pytest.raises(ConfigError, match="g5.xlarg"):
        run_pricing(CLIENT, "g5.xlarg")


def test_a_shared_price_survives_json_and_the_cost_dict_shows_its_parts():
    p = SharedPricing(CLIENT, lookup("g6.xlarge"), 0.5).price()
    back = Price.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    d = CostEstimate(p, inferences_per_s=10.0, wall_s=3600).to_dict()
    assert d["accelerator"] == {"name": "g6.xlarge", "usd_per_hour": 0.8048, "share": 0.5,
                                "basis": "fixed"}
    assert d["usd_total"] == pytest.approx(CLIENT.usd_per_hour + 0.4024)
    assert "accelerator" not in CostEstimate(CLIENT, 10.0, 1.0).to_dict()
    ref = SharedPricing(Price("c7i.large", 0.08925, reference=True), lookup("g5.xlarge"),
                        0.5).price()
    assert ref.note == ("this machine priced at the reference rate of c7i.large "
                        "($0.08925/h); --instance to change")


def test_an_accelerator_for_a_local_model_or_a_bad_share_is_refused_before_any_work(
        tmp_path, capsys):
    with pytest.raises(ConfigError, match="runs here"):
        validate(RunConfig("a.mp4", "o.mp4", model="centernet",
                           accelerator_instance="g5.xlarge"))
    for bad in ("half", "0", "1.5", "nan"):
        with pytest.raises(ConfigError, match="accelerator_share"):
            validate(RunConfig("a.mp4", "o.mp4", model="triton://h/m", accelerator_share=bad))
    validate(RunConfig("a.mp4", "o.mp4", model="triton://h/m", accelerator_instance="g5.xlarge",
                       accelerator_share="0.25"))
    with pytest.raises(SystemExit) as e:
        main(["detect", "a.mp4", "--accelerator-share", "2"])
    assert e.value.code == 2 and "expected auto or a number in (0, 1]" in capsys.readouterr().err
    clip = tmp_path / "in.mp4"
    red_square_clip(clip, frames=3)
    code = main(["detect", str(clip), "--no-video", "--accelerator-instance", "g5.xlarge"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "--accelerator-instance" in err[0]
    assert "Traceback" not in err[0]


def test_detect_on_a_server_prices_the_client_plus_its_share(tmp_path, capsys):
    clip = tmp_path / "in.mp4"
    red_square_clip(clip, frames=12)
    with TFServingStandIn("redsquare", find_red) as server:
        for share, expected in (("0.25", 0.25), ("auto", 1.0)):
            summary = tmp_path / f"s-{share}.json"
            code = main(["detect", str(clip), "--no-video", "--quiet", "--model",
                         server.endpoint, "--instance", "c7i.large", "--accelerator-instance",
                         "g5.xlarge", "--accelerator-share", share, "--summary", str(summary)])
            assert code == 0, capsys.readouterr().err
            s = json.loads(summary.read_text())
            assert s["frames"] == 12
            cost = s["cost"]
            assert cost["accelerator"]["name"] == "g5.xlarge"
            assert cost["accelerator"]["share"] == expected
            assert cost["usd_per_hour"] == pytest.approx(0.08925 + expected * 1.006)
            assert cost["instance"] == f"c7i.large + {expected:.0%} of g5.xlarge"
            assert cost["usd_per_100k_inferences"] == pytest.approx(
                cost["usd_per_hour"] * 100_000 / (3600 * s["fps"]), rel=1e-3)
        # without --accelerator-instance the run says the server is not in its price
        code = main(["detect", str(clip), "--no-video", "--model", server.endpoint,
                     "--summary", str(tmp_path / "plain.json"), "--no-dashboard"])
        assert code == 0
        assert "cost covers this machine only" in capsys.readouterr().err
        assert "accelerator" not in json.loads((tmp_path / "plain.json").read_text())["cost"]


def test_the_remote_client_pipeline_prices_its_share(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    pipeline = Path(__file__).resolve().parent.parent / "pipelines" / "remote-client.toml"
    red_square_clip(tmp_path / "cam.mp4", frames=8)
    monkeypatch.chdir(tmp_path)
    with TFServingStandIn("redsquare", find_red) as server:
        code = main(["run", str(pipeline), "--input", "cam.mp4", "--model", server.endpoint,
                     "--no-dashboard", "--accelerator-share", "0.5"])
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "cam-summary.json").read_text())
    assert s["frames"] == 8 and (tmp_path / "cam-detected.mp4").stat().st_size > 0
    assert s["cost"]["instance"] == "c7i.large + 50% of g5.xlarge"
    assert s["batch_size"] == 4


def test_bench_prices_a_remote_configuration_with_its_share_and_report_compares(
        tmp_path, tiny_model, capsys):
    clip = tmp_path / "in.mp4"
    red_square_clip(clip, frames=10)
    with TFServingStandIn("redsquare", find_red) as server:
        code = main(["bench", str(clip), "--model", server.endpoint, "--model",
                     str(tiny_model), "--frames", "8", "--no-video", "--quiet",
                     "--instance", "c7i.large", "--accelerator-instance", "g5.xlarge",
                     "--accelerator-share", "0.5", "--save", str(tmp_path / "b.json")])
    assert code == 0, capsys.readouterr().err
    runs = {r.model: r for r in load_runs([tmp_path / "b.json"])}
    remote = next(r for m, r in runs.items() if m == "redsquare")
    local = next(r for m, r in runs.items() if m != "redsquare")
    assert remote.label == "c7i.large + 50% of g5.xlarge"
    assert (remote.accelerator, remote.accelerator_share) == ("g5.xlarge", 0.5)
    assert remote.usd_per_hour == pytest.approx(0.08925 + 0.503)
    # the local model in the same sweep has no server to pay for
    assert local.accelerator is None and local.usd_per_hour == pytest.approx(0.08925)
    (line,) = compare_deployments(list(runs.values()))
    ratio = remote.usd_per_100k_inferences / local.usd_per_100k_inferences
    assert f"{ratio:.2f}x the cost per inference" in line
    assert line in recommend(list(runs.values())).advice
    main(["report", str(tmp_path / "b.json"), "--format", "markdown"])
    assert "small clients sharing an accelerator" in capsys.readouterr().out


def test_compare_deployments_needs_both_kinds_priced():
    one = Run("c7i.4xlarge", "m", "cpu", 1, 20.0, {}, usd_per_hour=0.714,
              usd_per_100k_inferences=0.99)
    shared = Run("x", "m", "cpu", 1, 5.0, {}, usd_per_hour=0.3,
                 usd_per_100k_inferences=1.67, accelerator="g5.xlarge", accelerator_share=0.2)
    assert compare_deployments([one]) == [] and compare_deployments([shared]) == []
    (line,) = compare_deployments([one, shared])
    assert "1.69x the cost per inference (dearer)" in line
