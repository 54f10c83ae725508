"""The CaloChallenge Pareto view: fidelity against generation time per shower, several runs.

Each evaluated run gives one point: a fidelity metric read from its ``metrics.json`` (any name
:func:`caloforge.evaluate.verdict.metric_value` knows, default ``cls-high.auc``) and its time
per shower, taken from, in this order:

1. a timing file (``caloforge compare --timing FILE``): a JSON object ``{"RUN": seconds}`` or a
   benchmark result ``{"rows": [{"run" or "model": NAME, "seconds_per_shower": s or
   "ms_per_shower": ms}, ...]}``, matched on the run directory's name;
2. the run's own ``timing.seconds_per_shower`` (``caloforge evaluate --seconds-per-shower``).

A run without either is left off the plane with one sentence saying so. The Pareto front is the
set of points no other point beats on both axes (lower time, and lower metric, or higher for
PRDC and accuracy-like metrics where higher is better).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from caloforge.errors import ConfigError
from caloforge.evaluate.verdict import metric_value

#: metrics where a larger value is better (everything else: smaller is better)
HIGHER_IS_BETTER = ("prdc.precision", "prdc.recall", "prdc.density", "prdc.coverage")


def _positive(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def load_timings(path: str | os.PathLike) -> dict[str, float]:
    """Seconds per shower by run name from a timing file (see the module docstring).

    Raises:
        ConfigError: the file is missing, not JSON, or holds no usable timing.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"timing file {p} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    out: dict[str, float] = {}
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        for row in data["rows"]:
            if not isinstance(row, dict):
                continue
            name = row.get("run", row.get("model"))
            secs = _positive(row.get("seconds_per_shower"))
            if secs is None and _positive(row.get("ms_per_shower")) is not None:
                secs = row["ms_per_shower"] / 1e3
            if isinstance(name, str) and secs is not None:
                out[name] = secs
    elif isinstance(data, dict):
        out = {k: v for k, v in ((k, _positive(v)) for k, v in data.items()) if v is not None}
    if not out:
        raise ConfigError(
            f'{p} holds no timing: expected {{"RUN": seconds_per_shower}} or {{"rows": '
            '[{"run": NAME, "seconds_per_shower": s}]}'
        )
    return out


def pareto_front(points: list[dict], higher_is_better: bool = False) -> list[bool]:
    """For each point (``seconds_per_shower``, ``value``), whether no other point is at least
    as good on both axes and strictly better on one."""
    sign = -1.0 if higher_is_better else 1.0
    flags = []
    for p in points:
        t, v = p["seconds_per_shower"], sign * p["value"]
        dominated = any(
            q["seconds_per_shower"] <= t
            and sign * q["value"] <= v
            and (q["seconds_per_shower"] < t or sign * q["value"] < v)
            for q in points
        )
        flags.append(not dominated)
    return flags


def pareto_points(
    runs: list[tuple[str, dict]], metric: str = "cls-high.auc", timings: dict | None = None
) -> tuple[list[dict], list[str]]:
    """The points of the plane and the notes (one sentence per run left off).

    Args:
        runs: (name, metrics dictionary) per evaluated run.
        metric: the fidelity axis (a :func:`~caloforge.evaluate.verdict.metric_value` name).
        timings: seconds per shower by run name (from :func:`load_timings`), preferred over
            a run's own ``timing`` entry.

    Returns:
        (points, notes): each point ``{"run", "value", "seconds_per_shower", "timing_source",
        "pareto"}``.

    Raises:
        ConfigError: ``metric`` is not a known metric name.
    """
    metric_value({}, metric)  # unknown names fail here
    timings = timings or {}
    points, notes = [], []
    for name, m in runs:
        secs, source = timings.get(name), "timing file"
        if secs is None:
            secs, source = _positive((m.get("timing") or {}).get("seconds_per_shower")), "metrics"
        value = metric_value(m, metric)
        if secs is None:
            notes.append(
                f"{name} has no timing (no timing.seconds_per_shower in its metrics.json and no "
                "entry in --timing), so it is left off the Pareto plane."
            )
        elif value is None:
            notes.append(f"{name} has no {metric}, so it is left off the Pareto plane.")
        else:
            points.append(
                {"run": name, "value": value, "seconds_per_shower": secs, "timing_source": source}
            )
    flags = pareto_front(points, higher_is_better=metric in HIGHER_IS_BETTER)
    for p, flag in zip(points, flags, strict=True):
        p["pareto"] = flag
    return points, notes
