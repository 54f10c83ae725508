"""The runnable examples in module docstrings run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: modules whose docstrings carry an ``Example:`` block
MODULES = [
    "caloforge.devices",
    "caloforge.discovery",
    "caloforge.evaluate.shapes",
    "caloforge.models.vae_latents",
    "caloforge.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), raise_on_error=False)
    assert result.attempted >= 1, f"{name} has no example"
    assert result.failed == 0
