"""Built-in plug-ins found from what their files declare, without importing them.

A built-in model, prior sampler or metric is one file in its package that registers itself with
a decorator carrying its name::

    @register_model("flow")          # in src/caloforge/models/flow.py
    class LayerFlow(Generator): ...

:func:`declared_names` reads the package's module files as text and finds those decorators with
:mod:`ast` (a file without the decorator's name in it is not even parsed), so listing the names,
or finding which module to import for one of them, imports nothing: loading a QVAE does not
import the quantum-circuit stack of the QGANs, and adding a plug-in needs no table to edit.

    >>> from caloforge.discovery import declared_names
    >>> declared_names("caloforge.models", "register_model")["gan3d"]
    'caloforge.models.gan3d'
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def _decorated_names(tree: ast.Module, decorator: str) -> list[str]:
    """The string first arguments of ``@decorator("name")`` on the module's top-level classes
    and functions (``@decorator(...)`` written as a name or as ``module.decorator``)."""
    names = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef | ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if not isinstance(dec, ast.Call) or not dec.args:
                continue
            func = dec.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = dec.args[0]
            if called == decorator and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    names.append(first.value)
    return names


@functools.cache
def declared_names(package: str, decorator: str) -> dict[str, str]:
    """Plug-in name -> dotted module, for every ``@decorator("name")`` in ``package``'s modules.

    Only the package's own ``*.py`` files are read (not subpackages; files starting with ``_``
    are helpers and skipped). The answer is cached for the process.

    Raises:
        ValueError: two modules declare the same name (a packaging mistake, found by the tests).
    """
    locations = list(getattr(importlib.import_module(package), "__path__", []))
    found: dict[str, str] = {}
    for location in locations:
        for path in sorted(Path(location).glob("*.py")):
            if path.name.startswith("_"):
                continue
            text = path.read_text(encoding="utf-8")
            if f"{decorator}(" not in text:
                continue
            module = f"{package}.{path.stem}"
            for name in _decorated_names(ast.parse(text, str(path)), decorator):
                if name in found and found[name] != module:
                    raise ValueError(
                        f"{decorator} name {name!r} is declared by both {found[name]} and {module}"
                    )
                found[name] = module
    return found


def import_declaring(package: str, decorator: str, name: str) -> bool:
    """Import the module of ``package`` that declares ``name`` (True), or return False when no
    module declares it. A module that fails to import raises its own error (e.g. a
    :class:`~caloforge.errors.MissingExtraError` naming the extra to install)."""
    module = declared_names(package, decorator).get(name)
    if module is None:
        return False
    importlib.import_module(module)
    return True


class Registry(Generic[T]):
    """The plug-ins of one kind (models, prior samplers, metrics): registered by name with a
    decorator, the built-in ones found from their files (:func:`declared_names`) and imported
    on first use.

    Args:
        kind: what the plug-ins are, for messages ("model", "sampler", "metric").
        package: the package whose modules declare built-ins.
        decorator: the decorator's name in those modules (e.g. ``"register_model"``).
        error: the exception class for an unknown name (one sentence, exit 2 in the CLI).

    Example:
        >>> reg = Registry("widget", "caloforge.models", "register_widget", KeyError)
        >>> reg.register("spinner", object) is object, reg.names()
        (True, ['spinner'])
    """

    def __init__(
        self, kind: str, package: str, decorator: str, error: Callable[[str], Exception]
    ) -> None:
        self.kind, self.package, self.decorator = kind, package, decorator
        self._error = error
        #: name -> registered object (tests may remove entries to simulate a fresh process)
        self.entries: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        """Make ``obj`` available as ``name``; a second, different object for a registered name
        is a :class:`ValueError` (two plug-ins claiming one name)."""
        known = self.entries.get(name)
        if known is not None and known is not obj:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self.entries[name] = obj
        return obj

    def builtin(self) -> dict[str, str]:
        """Built-in name -> module, found without importing anything."""
        return declared_names(self.package, self.decorator)

    def names(self) -> list[str]:
        """Every name :meth:`get` accepts: built-in (imported or not) and registered."""
        return sorted(set(self.entries) | set(self.builtin()))

    def get(self, name: str) -> T:
        """The object registered as ``name``, importing the built-in module that declares it."""
        if name not in self.entries:
            import_declaring(self.package, self.decorator, name)
        if name not in self.entries:
            known = ", ".join(self.names()) or "none"
            raise self._error(f"unknown {self.kind} {name!r}; choose one of {known}")
        return self.entries[name]


__all__ = ["Registry", "declared_names", "import_declaring"]
