"""docs/adding-a-sampler.md: its example sampler, saved as one file of the package, is found by
name, samples and matches the exact law."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import caloforge.boltzmann
from caloforge.boltzmann import BoltzmannMachine, get_sampler, make_topology, samplers
from caloforge.boltzmann.partition import all_states, exact_energies
from caloforge.discovery import declared_names

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-sampler.md"
MODULE = "caloforge.boltzmann.metropolis"


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The guide's code block saved as ``metropolis.py`` in a folder of the caloforge.boltzmann
    package (its ``__path__`` extended for this test), as a new built-in sampler file; nothing
    imports it here. Unregistered and forgotten afterwards."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    (tmp_path / "metropolis.py").write_text(code)
    path = [*caloforge.boltzmann.__path__, str(tmp_path)]
    monkeypatch.setattr(caloforge.boltzmann, "__path__", path)
    declared_names.cache_clear()
    try:
        yield
    finally:
        samplers.SAMPLERS.entries.pop("metropolis", None)
        sys.modules.pop(MODULE, None)
        declared_names.cache_clear()


def test_the_new_file_is_found_by_name(example):
    assert "metropolis" in samplers.sampler_names() and MODULE not in sys.modules
    assert type(get_sampler("metropolis", sweeps=3)).__name__ == "MetropolisSampler"
    assert MODULE in sys.modules


def _machine() -> BoltzmannMachine:
    return BoltzmannMachine.random(make_topology("rbm-dense", 4), weight_scale=0.7, seed=3)


def test_the_guide_sampler_matches_the_exact_distribution(example):
    bm = _machine()
    sampler = get_sampler("metropolis", sweeps=60)
    assert "metropolis" in samplers.sampler_names()
    n = 4000
    draws = sampler.sample(bm, n, seed=5)
    assert draws.shape == (n, bm.n_units)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(draws, sampler.sample(bm, n, seed=5))  # same seed, same draws
    with torch.no_grad():
        probs = torch.softmax(-exact_energies(bm).double(), 0)
    exact = probs @ all_states(bm.n_units).double()
    # Each row is the end of an independent chain, so a unit's sample mean has the binomial
    # standard error sqrt(p (1 - p) / n) <= 0.0079 for n = 4000; 60 sweeps of 8 units mix far
    # below that. 6 standard errors: a false alarm in 8 units has probability < 1e-7.
    se = torch.sqrt(exact * (1 - exact) / n)
    assert torch.all((draws.double().mean(0) - exact).abs() <= 6 * se + 1e-3)


def test_the_guide_sampler_keeps_clamped_units(example):
    bm = _machine()
    fixed = torch.ones(10, len(bm.partitions[0]))
    draws = get_sampler("metropolis", sweeps=5).sample(bm, 10, seed=1, clamp={0: fixed})
    assert torch.equal(draws[:, bm.partitions[0]], fixed)


def test_unknown_options_and_names_are_one_sentence(example):
    from caloforge.boltzmann.errors import BoltzmannError

    with pytest.raises(BoltzmannError, match="bad option for sampler 'metropolis'"):
        get_sampler("metropolis", temperature=2)
    with pytest.raises(BoltzmannError, match="unknown sampler 'metropolys'.*metropolis"):
        get_sampler("metropolys")
