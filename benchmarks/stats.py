"""Medians, paired ratios and targets: how every scenario turns samples into a verdict."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: "higher": the value must reach the bound (throughput ratios); "lower": it must stay at
#: or under it (latency, time and memory).
HIGHER, LOWER = "higher", "lower"


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else float("nan")


def meets(value: float, direction: str, bound: float) -> bool:
    if math.isnan(value):
        return False
    return value >= bound if direction == HIGHER else value <= bound


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Target:
    """One headline number held against its target."""

    key: str
    label: str
    value: float
    bound: float
    direction: str
    unit: str  # "x" for a ratio, "MB" ...
    passed: bool
    #: Paired per-round values, when the scenario has rounds.
    per_round: list[float]
    #: How many of those rounds, taken alone, give the other verdict.
    rounds_disagreeing: int = 0

    @classmethod
    def of(
        cls,
        key: str,
        label: str,
        value: float,
        bound: float,
        direction: str,
        unit: str = "x",
        per_round: Sequence[float] = (),
    ) -> Target:
        passed = meets(value, direction, bound)
        disagreeing = sum(1 for x in per_round if meets(x, direction, bound) != passed)
        return cls(key, label, value, bound, direction, unit, passed, list(per_round), disagreeing)

    @property
    def verdict(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        if self.rounds_disagreeing:
            verdict += f" (noisy: {self.rounds_disagreeing}/{len(self.per_round)} rounds disagree)"
        return verdict

    @property
    def bound_text(self) -> str:
        sign = ">=" if self.direction == HIGHER else "<="
        number = f"{self.bound:.2f}" if self.unit == "x" else f"{self.bound:g} {self.unit}"
        return f"{sign} {number}{'x' if self.unit == 'x' else ''}"

    @property
    def value_text(self) -> str:
        return f"{self.value:.3f}x" if self.unit == "x" else f"{self.value:+.2f} {self.unit}"


def format_targets(targets: Sequence[Target]) -> str:
    width = max((len(t.label) for t in targets), default=10)
    lines = [f"  {'target':<{width}} {'measured':>10}  {'target':<10} verdict"]
    for t in targets:
        lines.append(f"  {t.label:<{width}} {t.value_text:>10}  {t.bound_text:<10} {t.verdict}")
    return "\n".join(lines)
