"""What inference costs: prices from a dated catalog, and dollars per 100k inferences.

>>> round(usd_per_100k_inferences(0.36, 1000 / 222.78), 2)   # seed: m5.large+eia.large
2.23
>>> price = lookup("c5.4xlarge")
>>> price.usd_per_hour, price.region, price.date
(0.68, 'us-east-1', '2026-11')
>>> lookup("c5.4xlarge-2019").region                          # the write-up's row
'us-west-2'

A run priced at no instance is priced at the reference instance (:data:`DEFAULTS
<vidstream.settings.DEFAULTS>`'s ``reference_instance``), and says so:

>>> resolve_price().reference, resolve_price().name == DEFAULTS.reference_instance
(True, True)
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .settings import DEFAULTS


@dataclass(frozen=True)
class Accelerator:
    """The shared accelerator part of a remote run's price: its instance, the hourly rate of
    the whole instance, and the client's share of it (with how that share was found)."""

    name: str
    usd_per_hour: float
    share: float
    basis: str = ""  # "fixed", "auto: 300 of 1200 server inferences", ...


@dataclass(frozen=True)
class Price:
    """An hourly price with where and when it was true."""

    name: str
    usd_per_hour: float
    region: str = ""
    date: str = ""
    source: str = ""
    vcpus: int | None = None
    memory_gib: float | None = None
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    retired: bool = False
    reference: bool = False  # chosen by default, not by the user: shown as such
    # a client of a shared server: usd_per_hour is the client's plus this share of the server's
    accelerator: Accelerator | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Price:
        """The inverse of :meth:`to_dict` (prices travel as JSON to bench children and to
        cluster workers)."""
        data = dict(data)
        if isinstance(data.get("accelerator"), dict):
            data["accelerator"] = Accelerator(**data["accelerator"])
        return cls(**data)

    @property
    def note(self) -> str:
        """What a price stands for, in words (empty for a price the user chose).

        >>> Price("c7i.large", 0.08925, reference=True).note
        'priced at the reference rate of c7i.large ($0.08925/h); --instance to change'
        """
        if not self.reference:
            return ""
        if self.accelerator is not None:  # the reference stands for the client machine only
            client = self.usd_per_hour - self.accelerator.share * self.accelerator.usd_per_hour
            return (f"this machine priced at the reference rate of "
                    f"{self.name.split(' + ')[0]} (${client:.6g}/h); --instance to change")
        return (f"priced at the reference rate of {self.name} (${self.usd_per_hour:g}/h); "
                "--instance to change")


#: A price, or a function giving the price now (a remote run's share changes as it goes).
PriceLike = Price | Callable[[], Price]


def current(price: PriceLike) -> Price:
    """``price`` as it stands now.

    >>> current(lambda: Price("x", 1.0)).name
    'x'
    """
    return price() if callable(price) else price


def usd_per_100k_inferences(usd_per_hour: float, inferences_per_s: float) -> float:
    """The seed's formula: price x 100,000 / (3,600 x inferences per second)."""
    if inferences_per_s <= 0:
        return float("inf")
    return usd_per_hour * 100_000 / (3_600 * inferences_per_s)


def load_catalog(extra: str | Path | None = None) -> dict[str, Price]:
    """The packaged catalog, with rows from ``extra`` (same JSON shape) added or overriding."""
    text = resources.files("vidstream").joinpath("data/instances.json").read_text()
    rows = _rows(json.loads(text), "the packaged catalog")
    if extra is not None:
        path = Path(extra)
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise ConfigError(f"{path}: cannot read catalog: {e.strerror or e}",
                              param="catalog") from e
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}", param="catalog") from e
        rows.update(_rows(data, str(path), param="catalog"))
    return rows


def _rows(data: object, where: str, param: str | None = None) -> dict[str, Price]:
    rows = data.get("instances") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ConfigError(f'{where}: expected {{"instances": [...]}} or a list of instances',
                          param=param)
    out: dict[str, Price] = {}
    fields = set(Price.__dataclass_fields__)
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "name" not in row or "usd_per_hour" not in row:
            raise ConfigError(f"{where}: instance #{i + 1} needs at least name and usd_per_hour",
                              param=param)
        try:
            price = float(row["usd_per_hour"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: instance {row['name']!r}: usd_per_hour must be a number", param=param
            ) from None
        if price < 0:
            raise ConfigError(f"{where}: instance {row['name']!r}: usd_per_hour is negative",
                              param=param)
        kwargs = {k: v for k, v in row.items() if k in fields}
        kwargs["usd_per_hour"] = price
        out[str(row["name"])] = Price(**kwargs)
    return out


def lookup(name: str, catalog: str | Path | None = None) -> Price:
    """The catalog row called ``name``; the error suggests the closest names there are.

    >>> lookup("c5.xlarge").usd_per_hour
    0.17
    >>> try:
    ...     lookup("c5.xlarg")
    ... except ConfigError as e:
    ...     print(e.message.split("?")[0])
    unknown instance 'c5.xlarg'; did you mean c5.xlarge, c5.9xlarge, c5.4xlarge
    """
    rows = load_catalog(catalog)
    if name in rows:
        return rows[name]
    by_lower = {k.lower(): k for k in rows}
    if name.strip().lower() in by_lower:  # C5.XLARGE, a stray space
        return rows[by_lower[name.strip().lower()]]
    close = difflib.get_close_matches(name.strip().lower(), list(by_lower), n=3, cutoff=0.6)
    family = name.strip().lower().split(".", 1)[0] + "."
    if not close:  # an unknown size of a known family: name the family's sizes
        close = sorted(k for k in by_lower if k.startswith(family))[:6]
    hint = (f"did you mean {', '.join(by_lower[c] for c in close)}? " if close else "")
    raise ConfigError(f"unknown instance {name!r}; {hint}(the catalog knows {len(rows)} "
                      "instances; --catalog FILE adds more)", param="instance")


def resolve_price(
    instance: str | None = None,
    price_per_hour: float | None = None,
    catalog: str | Path | None = None,
    label: str | None = None,
) -> Price:
    """The price a run is costed at: ``price_per_hour`` wins, else the catalog's ``instance``,
    else the reference instance's (``DEFAULTS.reference_instance``), marked ``reference``."""
    if price_per_hour is not None:
        if price_per_hour < 0:
            raise ConfigError(f"a price per hour must be >= 0, got {price_per_hour:g}",
                              param="price_per_hour")
        base = lookup(instance, catalog) if instance else None
        name = label or instance or "custom"
        return Price(
            name=name,
            usd_per_hour=price_per_hour,
            source="given on the command line",
            vcpus=base.vcpus if base else None,
            memory_gib=base.memory_gib if base else None,
            gpu=base.gpu if base else None,
            gpu_memory_gib=base.gpu_memory_gib if base else None,
        )
    if instance:
        return lookup(instance, catalog)
    return replace(lookup(DEFAULTS.reference_instance, catalog), reference=True)


@dataclass(frozen=True)
class CostEstimate:
    """Cost of a run at ``price``: per 100k inferences at the run's rate, and in total."""

    price: Price
    inferences_per_s: float
    wall_s: float

    @property
    def usd_per_100k_inferences(self) -> float:
        return usd_per_100k_inferences(self.price.usd_per_hour, self.inferences_per_s)

    @property
    def usd_total(self) -> float:
        return self.price.usd_per_hour * self.wall_s / 3_600

    def to_dict(self) -> dict:
        """Dollars as computed, never rounded: a cheap, fast configuration costs fractions of
        a cent per 100k inferences, and a reader recomputing it from ``fps`` must agree."""
        per_100k = self.usd_per_100k_inferences
        return {
            "instance": self.price.name,
            "usd_per_hour": self.price.usd_per_hour,
            "region": self.price.region,
            "price_date": self.price.date,
            "price_source": self.price.source,
            "reference": self.price.reference,
            "note": self.price.note or None,
            "usd_per_100k_inferences": per_100k if per_100k != float("inf") else None,
            "usd_total": self.usd_total,
            **({} if self.price.accelerator is None else
               {"accelerator": asdict(self.price.accelerator)}),
        }
