"""Generative models behind one interface (see :mod:`caloforge.models.base`)."""

from caloforge.models.base import (
    Generator,
    available_models,
    builtin_models,
    load_generator,
    model_class,
    register_model,
)

__all__ = [
    "Generator",
    "available_models",
    "builtin_models",
    "load_generator",
    "model_class",
    "register_model",
]
