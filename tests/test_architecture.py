"""The package's imports point down its layers (docs/architecture.md), with no two
units importing each other: ``tools/check_layers.py``, run as part of the tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_layers.py"


def test_imports_point_down_the_layers_and_no_units_import_each_other():
    spec = importlib.util.spec_from_file_location("check_layers", TOOL)
    assert spec is not None and spec.loader is not None
    check_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_layers)
    assert check_layers.check() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    # a check that can fail: a module of the log importing the App is reported
    spec = importlib.util.spec_from_file_location("check_layers", TOOL)
    assert spec is not None and spec.loader is not None
    check_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_layers)
    package = tmp_path / "streamkit"
    (package / "log").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("")
    (package / "log" / "__init__.py").write_text("")
    (package / "log" / "broker.py").write_text("from streamkit.app import App\n")
    monkeypatch.setattr(check_layers, "PACKAGE", package)
    problems = check_layers.check()
    assert any("log imports streamkit.app, a layer up" in p for p in problems)
