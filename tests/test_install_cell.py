"""The notebook's first cell, with pip replaced by a stand-in: what it installs, at which versions, and what it says."""

import importlib.metadata
import importlib.util
import subprocess

import pytest

from conftest import notebook_cells, pinned_versions

SOURCE = "".join(notebook_cells()[0]["source"])


def run_first_cell(monkeypatch, capsys, missing, pip_results):
    """Run the cell as if `missing` modules were absent and pip exited with `pip_results` in turn; return what it
    printed and, for each pip call, the package asked for and the constraints it was held to."""
    real_find_spec, real_distributions = importlib.util.find_spec, importlib.metadata.distributions
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real_find_spec(name, *a))
    monkeypatch.setattr(importlib.metadata, "distributions",  # nor is it in the installed packages the cell holds fixed
                        lambda: [d for d in real_distributions() if (d.metadata["Name"] or "").lower() not in missing])
    calls, results = [], iter(pip_results)

    def fake_run(command, **kwargs):
        constraints = open(command[command.index("-c") + 1]).read().splitlines()
        calls.append((command[-1], dict(line.split("==") for line in constraints)))
        return subprocess.CompletedProcess(command, next(results))

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")  # "what pip chose" in the fallback
    exec(compile(SOURCE, "first cell", "exec"), {})
    return capsys.readouterr().out, calls


def test_a_missing_package_comes_at_the_tested_version(monkeypatch, capsys):
    out, calls = run_first_cell(monkeypatch, capsys, {"anywidget"}, [0])
    tested = pinned_versions()
    assert [package for package, _ in calls] == ["anywidget"]
    pins = calls[0][1]
    assert pins["anywidget"] == tested["anywidget"] and pins["psygnal"] in (tested["psygnal"], importlib.metadata.distribution("psygnal").version)
    assert pins["numpy"] == importlib.metadata.distribution("numpy").version, "installed packages stay at their versions"
    assert f"Installed anywidget {tested['anywidget']}, the tested version." in out


def test_when_the_tested_version_does_not_fit_it_says_so(monkeypatch, capsys):
    out, calls = run_first_cell(monkeypatch, capsys, {"anywidget"}, [1, 0])
    assert len(calls) == 2 and "anywidget" not in calls[1][1], "the second try is held only to what is installed"
    assert "Installed anywidget 9.9.9: the tested" in out and "does not fit beside the installed packages" in out


def test_when_nothing_fits_it_says_so(monkeypatch, capsys):
    out, calls = run_first_cell(monkeypatch, capsys, {"anywidget"}, [1, 1])
    assert len(calls) == 2 and "Could not install anywidget without changing installed packages." in out


def test_nothing_missing_nothing_installed(monkeypatch, capsys):
    out, calls = run_first_cell(monkeypatch, capsys, set(), [])
    assert calls == [] and "nothing to install" in out
