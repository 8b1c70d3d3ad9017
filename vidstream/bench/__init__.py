"""Measure configurations on this machine and compare machines by cost.

:mod:`~vidstream.bench.runner` runs the sweep (each configuration in a fresh process, see
:mod:`~vidstream.bench.child`); :mod:`~vidstream.bench.report` ranks the runs of any number of
machines and recommends one, the EIPredictor write-up's method::

    result = run_bench(BenchOptions("traffic.mp4", frames=120), sweep(["centernet"], ["cpu"],
                       [None], [1, 2, 4]), price=lookup("c5.4xlarge"))
    result.save("c5.json")
    rec = recommend(load_runs(["c5.json", "g4dn.json"]), target_fps=15)
"""

from __future__ import annotations

from .report import Recommendation, Run, load_runs, recommend
from .runner import BenchConfig, BenchOptions, BenchResult, NotMeasured, run_bench, sweep

__all__ = ["BenchConfig", "BenchOptions", "BenchResult", "NotMeasured", "Recommendation", "Run",
           "load_runs", "recommend", "run_bench", "sweep"]
