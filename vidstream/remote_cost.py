"""What a remote run costs: the client instance plus its share of the accelerator instance.

Elastic Inference priced a client instance and an attached accelerator together. With a shared
server the accelerator instance (``g5.xlarge``, say) serves many clients, so each pays its
share of it: a fixed fraction, or ``auto``, the fraction of the server's inferences over the
run that were this client's (from Triton's ``nv_inference_count``), or else one over the number
of clients.

>>> from vidstream.cost import Price
>>> client, gpu = Price("c5.large", 0.085), Price("g5.xlarge", 1.006)
>>> share = accelerator_share("auto", client_inferences=300, server_inferences=1200)
>>> share
0.25
>>> p = shared_price(client, gpu, share)
>>> p.name, round(p.usd_per_hour, 4)
('c5.large + 25% of g5.xlarge', 0.3365)

A run prices itself with :class:`SharedPricing`, from what its remote predictor reported
(``remote`` in its summary: this client's frames and the server's inferences meanwhile):

>>> pricing = SharedPricing(client, gpu, "auto")
>>> pricing.price({"frames": 300, "server": {"inference_count": 1200}}).accelerator.basis
'auto: 300 of 1200 server inferences'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cost import Accelerator, Price, lookup
from .errors import ConfigError


def accelerator_share(share: str | float, *, client_inferences: float | None = None,
                      server_inferences: float | None = None,
                      clients: int | None = None) -> float:
    """This client's fraction (0-1] of the accelerator instance.

    ``share``: a number, or ``"auto"``: ``client_inferences / server_inferences`` when both
    are known (the server's count over the same period), else ``1 / clients``, else 1 (the
    client had the accelerator to itself).
    """
    if isinstance(share, str) and share.strip().lower() == "auto":
        if client_inferences and server_inferences and server_inferences > 0:
            return min(1.0, client_inferences / server_inferences)
        if clients:
            return 1.0 / clients
        return 1.0
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise ConfigError(
            f"accelerator share {share!r}: expected auto or a number in (0, 1]") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"accelerator share {value:g}: expected a number in (0, 1]")
    return value


def shared_price(client: Price, accelerator: Price, share: float, basis: str = "") -> Price:
    """One hourly :class:`~vidstream.cost.Price` for a remote run: the client's price plus
    ``share`` of the accelerator's; the row says both names, the share and both sources."""
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"accelerator share {share:g}: expected a number in (0, 1]")
    dates = ", ".join(dict.fromkeys(d for d in (client.date, accelerator.date) if d))
    sources = "; ".join(dict.fromkeys(s for s in (client.source, accelerator.source) if s))
    return Price(
        name=f"{client.name} + {share:.0%} of {accelerator.name}",
        usd_per_hour=client.usd_per_hour + share * accelerator.usd_per_hour,
        region=client.region or accelerator.region,
        date=dates,
        source=sources,
        vcpus=client.vcpus,
        memory_gib=client.memory_gib,
        gpu=accelerator.gpu,
        gpu_memory_gib=accelerator.gpu_memory_gib,
        retired=client.retired or accelerator.retired,
        reference=client.reference,
        accelerator=Accelerator(accelerator.name, accelerator.usd_per_hour, share,
                                basis or "fixed"),
    )


def remote_price(client: Price, accelerator_instance: str, share: str | float = "auto", *,
                 catalog: str | Path | None = None, **usage: float | int | None) -> Price:
    """:func:`shared_price` with the accelerator looked up in the catalog and the share
    resolved by :func:`accelerator_share` (``usage``: its keyword arguments)."""
    accelerator = lookup(accelerator_instance, catalog)
    return shared_price(client, accelerator, accelerator_share(share, **usage))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SharedPricing:
    """How a client of a shared server is priced: its own instance plus ``share`` (a number,
    or ``"auto"``) of the accelerator instance; :meth:`price` resolves ``auto`` from what the
    remote predictor counted."""

    client: Price
    accelerator: Price
    share: str | float = "auto"

    @classmethod
    def lookup(cls, client: Price, accelerator_instance: str, share: str | float = "auto",
               catalog: str | Path | None = None) -> SharedPricing:
        accelerator_share(share, clients=1)  # a bad share fails here, before any work
        return cls(client, lookup(accelerator_instance, catalog), share)

    def price(self, remote: dict[str, Any] | None = None) -> Price:
        """The price given ``remote`` (a summary's ``remote``: ``frames`` this client sent,
        ``server.inference_count`` the server ran meanwhile, every client's together)."""
        auto = isinstance(self.share, str) and self.share.strip().lower() == "auto"
        if not auto:
            return shared_price(self.client, self.accelerator, accelerator_share(self.share),
                                "fixed")
        mine = (remote or {}).get("frames") or 0
        server = ((remote or {}).get("server") or {}).get("inference_count") or 0
        if mine and server:
            # the server's count is read a moment after this client's: never above one
            share = accelerator_share("auto", client_inferences=mine,
                                      server_inferences=max(server, mine))
            basis = f"auto: {mine} of {max(server, mine)} server inferences"
        else:
            share, basis = 1.0, "auto: no server counts yet, the whole accelerator"
        return shared_price(self.client, self.accelerator, share, basis)


def run_pricing(client: Price, accelerator_instance: str | None, share: str | float = "auto",
                catalog: str | Path | None = None) -> Price | SharedPricing:
    """What a run is priced at: ``client`` alone, or with a shared accelerator's part."""
    if not accelerator_instance:
        return client
    return SharedPricing.lookup(client, accelerator_instance, share, catalog)


def price_now(pricing: Price | SharedPricing, details: dict[str, Any]) -> Price:
    """The price given a run's details so far (its summary's ``remote``, when remote)."""
    if isinstance(pricing, SharedPricing):
        return pricing.price(details.get("remote"))
    return pricing
