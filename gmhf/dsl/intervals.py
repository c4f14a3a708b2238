"""Interval arithmetic over factor supports, so `check` can prove a `require` impossible without torch.

An expression evaluates to an `(low, high)` interval bounding every value it can take when each factor
ranges over its support; a comparison evaluates to a `Truth`: certainly true, certainly false, or
maybe. Only "certainly false" is reported; anything unknown widens to (-inf, inf).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

__all__ = ["ANY", "Interval", "Truth", "add", "compare", "div", "mul", "neg", "power", "power_value", "sub"]

Interval = tuple[float, float]
ANY: Interval = (-math.inf, math.inf)


class Truth(enum.Enum):
    """Three-valued logic for predicates over intervals."""

    TRUE = "true"
    FALSE = "false"
    MAYBE = "maybe"

    def __and__(self, other: Truth) -> Truth:
        if Truth.FALSE in (self, other):
            return Truth.FALSE
        return Truth.TRUE if self is other is Truth.TRUE else Truth.MAYBE

    def __or__(self, other: Truth) -> Truth:
        if Truth.TRUE in (self, other):
            return Truth.TRUE
        return Truth.FALSE if self is other is Truth.FALSE else Truth.MAYBE

    def __invert__(self) -> Truth:
        return {Truth.TRUE: Truth.FALSE, Truth.FALSE: Truth.TRUE, Truth.MAYBE: Truth.MAYBE}[self]


def _safe(values: list[float]) -> Interval:
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) != len(values):
        return ANY
    return (min(finite), max(finite))


def neg(a: Interval) -> Interval:
    """-a."""
    return (-a[1], -a[0])


def add(a: Interval, b: Interval) -> Interval:
    """a + b."""
    return _safe([a[0] + b[0], a[1] + b[1]])


def sub(a: Interval, b: Interval) -> Interval:
    """a - b."""
    return add(a, neg(b))


def mul(a: Interval, b: Interval) -> Interval:
    """a * b (0 * inf counts as unknown)."""
    return _safe([x * y for x in a for y in b])


def div(a: Interval, b: Interval) -> Interval:
    """a / b; unknown when b may be 0."""
    if b[0] <= 0 <= b[1]:
        return ANY
    return mul(a, (1 / b[1], 1 / b[0]))


def power(a: Interval, b: Interval) -> Interval:
    """a ^ b for a constant non-negative integer exponent; unknown otherwise."""
    if a[0] == a[1] and b[0] == b[1]:  # a constant: compute it
        value = power_value(a[0], b[0])
        return ANY if value is None else (value, value)
    if b[0] != b[1] or not float(b[0]).is_integer() or b[0] < 0:
        return ANY
    k = int(b[0])
    ends = [a[0] ** k, a[1] ** k]
    if k % 2 == 0 and a[0] <= 0 <= a[1]:
        return (0.0, max(ends))
    return _safe(ends)


def power_value(base: float, exponent: float) -> float | None:
    """`base ^ exponent` of two constants, or None where it has no real value (a negative base to a
    non-integer power), is undefined (0 to a negative power) or overflows.

    A negative base with an integer exponent is exact and keeps its sign: (-2)^2 = 4, (-2)^3 = -8.
    """
    if base < 0 and not float(exponent).is_integer():
        return None
    try:
        value = float(base) ** float(exponent)
    except (ZeroDivisionError, OverflowError):
        return None
    return None if math.isnan(value) else value


def compare(op: str, a: Interval, b: Interval) -> Truth:
    """The truth of `a op b` over all values in the intervals."""
    if op in ("<", "<="):
        strict = op == "<"
        if a[1] < b[0] or (not strict and a[1] <= b[0]):
            return Truth.TRUE
        if a[0] > b[1] or (strict and a[0] >= b[1]):
            return Truth.FALSE
        return Truth.MAYBE
    if op in (">", ">="):
        return compare("<" if op == ">" else "<=", b, a)
    if op == "==":
        if a[1] < b[0] or b[1] < a[0]:
            return Truth.FALSE
        return Truth.TRUE if a[0] == a[1] == b[0] == b[1] else Truth.MAYBE
    return ~compare("==", a, b)  # "!="


def monotone(fn: Callable[[float], float], increasing: bool = True) -> Callable[[Interval], Interval]:
    """Interval map of a monotone scalar function (for exp, log, sqrt)."""
    def apply(a: Interval) -> Interval:
        try:
            lo, hi = fn(a[0]), fn(a[1])
        except (ValueError, OverflowError):
            return ANY
        return (lo, hi) if increasing else (hi, lo)
    return apply
