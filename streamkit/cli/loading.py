"""Finding the App a command names: ``module:attribute``, ``module`` or ``file.py[:attr]``."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from streamkit.app import App


class AppNotFound(click.ClickException):
    """The APP argument does not name an importable streamkit App."""


def load_app(spec: str) -> App:
    """Import the App named by ``spec``.

    ``pkg.module:attr`` and ``pkg.module`` (attribute ``app``) import a module from the
    current directory or ``sys.path``; ``path/to/file.py[:attr]`` runs the file as a
    module named after it, so ``if __name__ == "__main__"`` blocks stay quiet.
    """
    from streamkit.app import App

    target, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if target.endswith(".py") or os.sep in target or "/" in target:
        module = _import_file(spec, Path(target))
    else:
        module = _import_module(spec, target)
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise AppNotFound(f"{spec}: module {module.__name__!r} has no attribute "
                          f"{attribute!r}") from None
    if not isinstance(app, App):
        raise AppNotFound(f"{spec}: {attribute!r} is a {type(app).__name__}, "
                          "not a streamkit.App")
    if app.conf.origin is None and not target.endswith(".py"):
        app.conf.origin = target    # what autodiscover=True imports, as in Faust
    app.discover()
    return app


def _import_module(spec: str, name: str):  # type: ignore[no-untyped-def]
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise AppNotFound(f"{spec}: no module named {exc.name!r} (run from the "
                              "directory that holds it, or give path/to/file.py)") from None
        raise


def _import_file(spec: str, path: Path):  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise AppNotFound(f"{spec}: no such file {str(path)!r}")
    name = path.stem
    # let the script import its neighbours (examples/taxi.py beside examples/x.py)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise AppNotFound(f"{spec}: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module
