"""Cost arithmetic against the EIPredictor write-up's published rows, and the catalog."""

from __future__ import annotations

import json

import pytest
from seed import SEED_ROWS

from vidstream import ConfigError
from vidstream.cost import (
    CostEstimate,
    load_catalog,
    lookup,
    resolve_price,
    usd_per_100k_inferences,
)


@pytest.mark.parametrize(("name", "price", "ms", "published"), SEED_ROWS)
def test_seed_rows(name, price, ms, published):
    # the write-up rounded its inputs; its figures agree with the formula within 2%
    assert usd_per_100k_inferences(price, 1000 / ms) == pytest.approx(published, rel=0.02)
    row = lookup(name)
    assert row.usd_per_hour == price and row.region == "us-west-2" and row.date == "2019"


def test_eia_rows_are_marked_retired():
    rows = load_catalog()
    assert rows["m5.large+eia.large"].retired and rows["p2.xlarge"].retired
    assert not rows["g4dn.xlarge"].retired


def test_every_row_says_where_its_price_came_from():
    for row in load_catalog().values():
        assert row.source and row.region and row.date, row.name
        assert row.usd_per_hour > 0


def test_zero_rate_costs_infinity_not_a_crash():
    assert usd_per_100k_inferences(1.0, 0) == float("inf")


def test_cost_estimate_totals():
    est = CostEstimate(lookup("c5.4xlarge"), inferences_per_s=10.0, wall_s=3600.0)
    assert est.usd_total == pytest.approx(0.68)
    assert est.usd_per_100k_inferences == pytest.approx(0.68 * 100_000 / 36_000)
    assert est.to_dict()["instance"] == "c5.4xlarge"


def test_user_catalog_adds_and_overrides(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"instances": [
        {"name": "c5.4xlarge", "usd_per_hour": 0.5, "region": "eu-west-1", "date": "2026-11",
         "source": "my invoice"},
        {"name": "my-box", "usd_per_hour": 0.1, "source": "electricity bill"},
    ]}))
    rows = load_catalog(f)
    assert rows["c5.4xlarge"].usd_per_hour == 0.5 and rows["my-box"].usd_per_hour == 0.1
    assert resolve_price("my-box", catalog=f).source == "electricity bill"


def test_price_per_hour_wins_and_keeps_the_label():
    p = resolve_price("g4dn.xlarge", 0.2)
    assert p.usd_per_hour == 0.2 and p.name == "g4dn.xlarge" and p.gpu == "NVIDIA T4"
    assert resolve_price(None, 0.3, label="laptop").name == "laptop"
    assert resolve_price(None, None) is None


def test_bad_catalogs_are_named(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_catalog(f)
    f.write_text(json.dumps([{"name": "x"}]))
    with pytest.raises(ConfigError, match="needs at least name and usd_per_hour"):
        load_catalog(f)
    with pytest.raises(ConfigError, match="unknown instance 'nope'; known: "):
        lookup("nope")
