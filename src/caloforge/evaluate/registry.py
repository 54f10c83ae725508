"""Metrics the report computes by name, each declared in its own file.

A registered metric is a pure function of the two samples' high-level features (a
:class:`~caloforge.evaluate.features.ShowerFeatures` each: energies in MeV, positions in mm)
and a seed, returning a :class:`~caloforge.evaluate.distances.DistanceResult`::

    @register_metric("w1-response")
    def w1_response(reference, generated, *, seed=0):
        return wasserstein_1d(reference.response, generated.response, seed=seed)

Declared in a module of :mod:`caloforge.evaluate`, it is found without importing that module
(:mod:`caloforge.discovery`); :func:`caloforge.evaluate.report.evaluate` computes every
declared metric and writes it to ``metrics.json`` under ``"metrics"`` (``{name: {value, error,
batch_sizes, n_batches, note}}``), the HTML page lists it in the headline table and verdict
thresholds name it as ``metric.<name>`` (e.g. ``--pass 'metric.w1-response<0.01'``). Adding a
metric is one new file plus its test (docs/adding-a-metric.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from caloforge.discovery import Registry
from caloforge.errors import ConfigError
from caloforge.evaluate.distances import DistanceResult
from caloforge.evaluate.features import ShowerFeatures


class Metric(Protocol):
    """``metric(reference, generated, *, seed) -> DistanceResult`` on high-level features."""

    def __call__(
        self, reference: ShowerFeatures, generated: ShowerFeatures, *, seed: int = 0
    ) -> DistanceResult: ...


#: the metrics every report computes: declared in a module of :mod:`caloforge.evaluate` with
#: ``@register_metric("name")`` (found without importing it) or registered by the user
METRICS: Registry[Metric] = Registry("metric", "caloforge.evaluate", "register_metric", ConfigError)


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Function decorator: compute ``fn`` in every report as metric ``name``."""

    def wrap(fn: Metric) -> Metric:
        return METRICS.register(name, fn)

    return wrap


def metric_names() -> list[str]:
    """Every metric the report computes: declared in :mod:`caloforge.evaluate` or registered."""
    return METRICS.names()


def get_metric(name: str) -> Metric:
    """The metric registered as ``name`` (its module imported on first use)."""
    return METRICS.get(name)


def compute_metrics(
    reference: ShowerFeatures, generated: ShowerFeatures, *, seed: int = 0
) -> tuple[dict[str, dict], list[str]]:
    """Every registered metric of the two samples: ``({name: result dict}, notes)``; a metric
    that refuses the samples (a :class:`ConfigError`) is left out with a note saying why."""
    results: dict[str, dict] = {}
    notes: list[str] = []
    for name in metric_names():
        try:
            results[name] = get_metric(name)(reference, generated, seed=seed).to_dict()
        except ConfigError as exc:
            notes.append(f"Metric {name!r} was not computed: {exc}.")
    return results, notes


__all__ = ["Metric", "compute_metrics", "get_metric", "metric_names", "register_metric"]
