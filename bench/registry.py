"""The benchmark registry and the helpers every benchmark shares.

A benchmark is a function registered by name that takes a `Context` and returns `Figure`s:

    from bench.registry import Context, Figure, benchmark

    @benchmark("my-thing", "what it measures, in one line")
    def my_thing(ctx: Context) -> list[Figure]:
        runs = [...]  # ctx.repeats measurements, small ones when ctx.quick
        return [Figure("my-thing rate", runs, unit="/s", target=1000, better="higher")]

Any module in bench/ that registers benchmarks is picked up by `python -m bench.run` (it imports them all).
Figures report the median of their runs; a ratio is the median against a baseline measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass
class Figure:
    """One reported number: the median of `runs`, with its target and, optionally, a same-run baseline."""

    name: str
    runs: list[float]
    unit: str
    target: float | None = None
    better: Literal["higher", "lower"] = "higher"
    baseline_runs: list[float] = field(default_factory=list)  # the same measurement of the baseline, same run
    baseline: str | None = None  # what the baseline is
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def ratio(self) -> float | None:
        """Median of this figure over the median of its baseline (rates: the fraction of the baseline's speed)."""
        if not self.baseline_runs:
            return None
        base = statistics.median(self.baseline_runs)
        return self.median / base if base else None

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.median >= self.target if self.better == "higher" else self.median <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median": self.median,
            "unit": self.unit,
            "target": self.target,
            "better": self.better,
            "passed": self.passed,
            "runs": self.runs,
            "baseline": self.baseline,
            "baseline_median": statistics.median(self.baseline_runs) if self.baseline_runs else None,
            "baseline_runs": self.baseline_runs,
            "ratio": self.ratio,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass
class Context:
    """What a run asks of each benchmark: small sizes (`quick`), how many repeats, where to put files."""

    quick: bool
    repeats: int | None  # None: each benchmark's own default
    workdir: Path
    log: Callable[[str], None] = print

    def times(self, default: int, quick: int = 1) -> int:
        """How many measured runs: --repeat when given, else the benchmark's default (or quick default)."""
        if self.repeats is not None:
            return self.repeats
        return quick if self.quick else default

    @contextmanager
    def folder(self, name: str) -> Iterator[Path]:
        """A fresh temporary folder under the run's work folder, removed afterwards."""
        with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=self.workdir) as path:
            yield Path(path)


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[Context], list[Figure]]


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, description: str) -> Callable[[Callable[[Context], list[Figure]]], Callable[..., Any]]:
    """Register a benchmark under `name` (what `--only` selects)."""

    def register(function: Callable[[Context], list[Figure]]) -> Callable[[Context], list[Figure]]:
        if name in BENCHMARKS and BENCHMARKS[name].run is not function:
            raise ValueError(f"two benchmarks are named {name!r}")
        BENCHMARKS[name] = Benchmark(name, description, function)
        return function

    return register


def machine_index(seconds: float = 0.3) -> float:
    """A fixed pure-Python workload's rate (loops/s): how fast this machine is right now, for the record."""
    loops, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sum(range(1000))
        loops += 1
    return loops / (time.perf_counter() - started)


def machine_state() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count(), "load_1m": round(load[0], 2), "python_loops_per_s": round(machine_index())}
