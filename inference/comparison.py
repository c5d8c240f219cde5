"""How metric values are compared: one threshold grammar for the promotion gates, the monitoring
thresholds and the report, and one rule for which of two values is better.

A threshold is a comparison with a finite number::

    promotion:
      thresholds: {roc_auc: ">= 0.6", log_loss: "<= 0.69"}
    monitoring:
      thresholds: {auc: ">= 0.7", prediction_psi: "<= 0.2"}
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable

from featurestore.core.errors import BadInputError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<)?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    """A metric's accepted range, as ``<op> <bound>`` (for example ``>= 0.7``)."""

    metric: str
    op: str
    bound: float

    def accepts(self, value: float) -> bool:
        """True when ``value`` is in range."""
        return OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def parse_threshold(metric: str, text: object, key: str, bare_number: str | None = None) -> Threshold:
    """Parse ``text`` (an operator and a finite number) as the threshold of ``metric``.

    Args:
        metric: the metric the threshold is for.
        text: ``">= 0.7"``; a YAML number is read as its text.
        key: the configuration key of the thresholds, named in the error (``monitoring.thresholds``).
        bare_number: the operator a number without one means (the promotion gates: ``">="``);
            None refuses a bare number.

    Example: ``parse_threshold("auc", ">= 0.7", "monitoring.thresholds").accepts(0.8)`` is True.

    Raises:
        BadInputError: naming the key and metric, when ``text`` is not such a comparison.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    match = _THRESHOLD.match(text) if isinstance(text, str) else None
    op = (match.group(1) or bare_number) if match else None
    if match is None or op is None:
        raise BadInputError(f"{key}.{metric}: threshold {text!r} cannot be compared; write a comparison with a "
                            "number, for example '>= 0.7' or '<= 0.2'")
    bound = float(match.group(2))
    if not math.isfinite(bound):
        raise BadInputError(f"{key}.{metric}: bound {text!r} is not a finite number")
    return Threshold(metric, op, bound)


def improvement(candidate: float, incumbent: float, higher_is_better: bool) -> float:
    """How much better ``candidate`` is than ``incumbent``: positive when better, negative when worse.

    >>> improvement(0.8, 0.7, higher_is_better=True) > 0, improvement(0.3, 0.2, higher_is_better=False) > 0
    (True, False)
    """
    return candidate - incumbent if higher_is_better else incumbent - candidate
