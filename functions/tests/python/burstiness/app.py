"""Burstiness (peak-to-mean ratio) as a netnomos:aggregate component, written in Python.

Built with componentize-py against ../../../../wit/aggregate.wit (world `aggregate`).
It must agree with the Rust reference `functions::burstiness`: the maximum divided by the
arithmetic mean, and 0.0 for an empty list or a zero mean.  The sum is accumulated left
to right on purpose (not with `sum()`, which newer Pythons compensate), so that the
result is bit-for-bit the one the Rust reference computes.
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.function import (
    FunctionMetadata,
    Inputs_Numbers,
    Monotonicity,
)


def _burstiness(values: List[float]) -> float:
    if len(values) == 0:
        return 0.0
    total = 0.0
    peak = values[0]
    for v in values:
        total += v
        if v > peak:
            peak = v
    mean = total / float(len(values))
    if mean == 0.0:
        return 0.0
    return peak / mean


class Function(exports.Function):
    def metadata(self) -> FunctionMetadata:
        return FunctionMetadata(
            name="burstiness",
            description=(
                "Peak-to-mean ratio of the values: max / mean. "
                "0 for an empty list or when the mean is 0 (an all-zero window)."
            ),
            inputs=Inputs_Numbers(),
            monotonicity=Monotonicity.UNKNOWN,
            lower_bound=0.0,
            upper_bound=None,
        )

    def over_numbers(self, values: List[float]) -> float:
        return _burstiness(values)

    def over_fields(self, values: List[float]) -> float:
        if any(v != v for v in values):
            raise Err("a field value is NaN")
        return _burstiness(values)
