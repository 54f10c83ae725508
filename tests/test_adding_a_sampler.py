"""docs/adding-a-sampler.md: its example sampler registers, samples and matches the exact law."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

from caloforge.boltzmann import BoltzmannMachine, get_sampler, make_topology, samplers
from caloforge.boltzmann.partition import all_states, exact_energies

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-sampler.md"


@pytest.fixture
def example():
    """The guide's code block, run as a module; the sampler is unregistered afterwards."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    module = types.ModuleType("caloforge_sampler_guide_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, str(GUIDE), "exec"), module.__dict__)
        yield module
    finally:
        samplers._SAMPLERS.pop("metropolis", None)
        sys.modules.pop(module.__name__, None)


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
