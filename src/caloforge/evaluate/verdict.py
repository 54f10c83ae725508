"""The verdict of a report: which metrics pass the thresholds a user sets (pure functions).

A threshold names a metric, a comparison and a limit, e.g. ``cls-high.auc<0.6`` or
``fpd<=0.05``. Several are given comma-separated on the command line
(``--pass 'cls-high.auc<0.6,fpd<0.05'``) or as a JSON file, either a list of such strings or an
object ``{"cls-high.auc": "<0.6", "fpd": "<0.05"}``.

Metric names (:func:`metric_value` reads them from a ``metrics.json`` dictionary):

==========================  ================================================================
``cls-<mode>.<field>``      classifier ``<mode>`` (``high``, ``low``, ``low-normed``,
                            ``resnet``), field ``auc``, ``jsd``, ``auc_uncalibrated`` or
                            ``accuracy``
``fpd``, ``kpd``            the FPD / KPD value (raw, not x1e3)
``sep.mean``, ``sep.max``   mean / largest separation power over the summary set
``sep.<feature>``           one separation power, e.g. ``sep.response``, ``sep.E_layer_2``
``prdc.<field>``            ``precision``, ``recall``, ``density`` or ``coverage``
``metric.<name>``           the value of a registered metric (caloforge.evaluate.registry)
==========================  ================================================================

No published CaloChallenge values are built in: the verdict compares only with the limits the
user gives.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from caloforge.errors import ConfigError

OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_PATTERN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|<|>)\s*([^\s]+)\s*$")
CLASSIFIER_FIELDS = ("auc", "jsd", "auc_uncalibrated", "accuracy")
PRDC_FIELDS = ("precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class Threshold:
    """``metric op limit``, e.g. ``Threshold("cls-high.auc", "<", 0.6)``."""

    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Check:
    """One threshold applied: ``passed`` is None when the report lacks the metric."""

    metric: str
    op: str
    limit: float
    value: float | None
    passed: bool | None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_threshold(text: str) -> Threshold:
    """``"cls-high.auc<0.6"`` -> ``Threshold("cls-high.auc", "<", 0.6)``.

    Raises:
        ConfigError: not of the form METRIC OP NUMBER, or the limit is not a finite number.
    """
    match = _PATTERN.match(text)
    if not match:
        raise ConfigError(
            f"threshold {text!r} is not of the form METRIC<NUMBER (operators <, <=, >, >=), "
            "e.g. 'cls-high.auc<0.6'"
        )
    metric, op, raw = match.groups()
    try:
        limit = float(raw)
    except ValueError:
        raise ConfigError(f"threshold {text!r}: the limit {raw!r} is not a number") from None
    if not math.isfinite(limit):
        raise ConfigError(f"threshold {text!r}: the limit must be a finite number")
    return Threshold(metric, op, limit)


def parse_thresholds(spec: str) -> list[Threshold]:
    """Comma-separated thresholds, e.g. ``"cls-high.auc<0.6,fpd<0.05"``; empty: none."""
    return [parse_threshold(part) for part in spec.split(",") if part.strip()]


def load_thresholds(path: str | os.PathLike) -> list[Threshold]:
    """Thresholds from a JSON file: a list of ``"METRIC<NUMBER"`` strings or an object
    ``{"METRIC": "<NUMBER"}``.

    Raises:
        ConfigError: the file is missing, not JSON, or not one of the two shapes.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"threshold file {p} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, list) and all(isinstance(s, str) for s in data):
        return [parse_threshold(s) for s in data]
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return [parse_threshold(f"{k}{v}") for k, v in data.items()]
    raise ConfigError(
        f'{p} must hold a list of \'METRIC<NUMBER\' strings or an object {{"METRIC": "<NUMBER"}}'
    )


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metric_value(metrics: dict, name: str) -> float | None:
    """The value of metric ``name`` (see the module docstring) in a metrics dictionary, or
    None when the report did not compute it (e.g. no classifier run, a NaN separation power).

    Raises:
        ConfigError: ``name`` is not a metric name this module knows.
    """
    if name in ("fpd", "kpd"):
        return _number(metrics.get(name, {}).get("value"))
    head, _, field = name.partition(".")
    if head.startswith("cls-") and field in CLASSIFIER_FIELDS:
        return _number(metrics.get("classifier", {}).get(head[4:], {}).get(field))
    if head == "prdc" and field in PRDC_FIELDS:
        return _number(metrics.get("prdc", {}).get(field))
    if head == "metric" and field:
        from caloforge.evaluate.registry import get_metric

        get_metric(field)  # an unknown name is one sentence naming the registered ones
        return _number(metrics.get("metrics", {}).get(field, {}).get("value"))
    if head == "sep" and field:
        if field in ("mean", "max"):
            summary = metrics.get("separation_power_summary", {}).get("all", {})
            return _number(summary.get(field))
        seps = {**metrics.get("separation_power_extra", {}), **metrics.get("separation_power", {})}
        return _number(seps.get(field))
    raise ConfigError(
        f"unknown metric {name!r}; use cls-<mode>.<{'|'.join(CLASSIFIER_FIELDS)}>, fpd, kpd, "
        f"sep.mean, sep.max, sep.<feature>, prdc.<{'|'.join(PRDC_FIELDS)}> or metric.<name>"
    )


def check(metrics: dict, thresholds: list[Threshold]) -> list[Check]:
    """Apply every threshold to ``metrics`` (unknown metric names raise :class:`ConfigError`)."""
    out = []
    for t in thresholds:
        value = metric_value(metrics, t.metric)
        passed = None if value is None else bool(OPERATORS[t.op](value, t.limit))
        out.append(Check(t.metric, t.op, t.limit, value, passed))
    return out


def overall(checks: list[Check]) -> str:
    """``"none"`` (no thresholds), ``"fail"`` (any failed), ``"incomplete"`` (none failed but
    some metric is missing) or ``"pass"``."""
    if not checks:
        return "none"
    if any(c.passed is False for c in checks):
        return "fail"
    if any(c.passed is None for c in checks):
        return "incomplete"
    return "pass"


def verdict(metrics: dict, thresholds: list[Threshold]) -> dict:
    """``{"status": overall(...), "checks": [...]}``, the ``verdict`` entry of metrics.json."""
    checks = check(metrics, thresholds)
    return {"status": overall(checks), "checks": [c.to_dict() for c in checks]}


def null_deviation(metrics: dict) -> dict[str, float]:
    """Per classifier mode, (AUC - 0.5) / auc_null_sigma: how many null spreads the AUC lies
    from that of a perfect generator at this sample size (no threshold implied)."""
    out = {}
    for mode, c in metrics.get("classifier", {}).items():
        auc, sigma = _number(c.get("auc")), _number(c.get("auc_null_sigma"))
        if auc is not None and sigma:
            out[mode] = (auc - 0.5) / sigma
    return out
