"""The notebook runs top to bottom, with no error and nothing on stderr, in imitations of Google Colab and Kaggle.

Slow (builds a cached env per runtime the first time, then ~1-2 min per runtime) and needs the package index,
so it is marked `environments`:

    .venv/bin/python -m pytest tests/test_environments.py -m environments -v     # run only these
    .venv/bin/python -m pytest tests -m "not environments"                       # everything else

For each runtime in tests/envs/ (a pip spec with that runtime's exact versions):
  1. scripts/make_env.py builds or reuses .envs/<name>-base (stamped with the spec's hash);
  2. a throw-away hard-linked copy .envs/runs/<name> gets a Jupyter kernelspec in a temporary JUPYTER_PATH;
  3. nbconvert (from .venv) runs the notebook in fast mode (MNIST_FAST=1) on that kernel, in a scratch
     directory (so artifacts/ is untouched). anywidget, which both runtimes have, is uninstalled from the
     copy first: the notebook's first cell must install what is missing, as on a runtime without it;
  4. the test fails on any error output or stderr stream output (or Warning/Traceback/deprecated printed on
     stdout, the rule of test_notebook_hygiene.py, or the notebook's fallback notices "Could not install" /
     "cannot be exported"), naming the cell; also if tensorflow, keras, numpy or protobuf changed version,
     or anywidget is still missing after the run, or a package the first cell installed (the
     ones named in its TESTED dict) is not at the version pinned there. The executed copy is saved as artifacts/envs/<name>.ipynb.
It skips only when the interpreter a spec needs (e.g. Python 3.13 for colab) is not installed.

Environment knobs: ENV_TEST_TIMEOUT (seconds for the whole notebook, default 1800), ENV_TEST_NOTEBOOK (another
notebook to run instead of mnist_cnn.ipynb, e.g. a draft),
ENV_TEST_FULL=1 (run in full mode instead of fast mode),
ENV_TEST_KEEP_PIP_CONFIG=1 (let pip in the kernel read this machine's pip config files and PIP_* settings;
by default it gets none, like a hosted runtime, apart from index/certificate/proxy settings).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import make_env  # scripts/ is on sys.path (tests/conftest.py)
from conftest import WARNING_WORDS, pinned_versions

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = Path(os.environ.get("ENV_TEST_NOTEBOOK", ROOT / "mnist_cnn.ipynb"))  # e.g. to try a draft
OUT_DIR = ROOT / "artifacts" / "envs"
RUNS_DIR = make_env.ENVS_DIR / "runs"   # same file system as the base envs, so hard links work
RUNTIMES = ["colab", "kaggle"]
MUST_NOT_CHANGE = ("tensorflow", "keras", "numpy", "protobuf")
NEEDED = ("anywidget",)  # preinstalled on Colab and Kaggle; removed from the throw-away copy, so that the first cell installs it
# the notebook's own words when it carries on without a package or an export: a swallowed failure here
FALLBACK_WORDS = re.compile(r"Could not install|does not fit beside|cannot be exported")
TIMEOUT = int(os.environ.get("ENV_TEST_TIMEOUT", "1800"))
# pip settings that only say how to reach an index; everything else (PIP_FIND_LINKS, PIP_CONSTRAINT,
# PIP_DISABLE_PIP_VERSION_CHECK...) is this machine's, not the hosted runtime's
PIP_NETWORK_SETTINGS = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST",
                        "PIP_PROXY", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES", "PIP_TIMEOUT"}

pytestmark = pytest.mark.environments


def installed_versions(python, packages=MUST_NOT_CHANGE):
    """{package: version, or None if not installed} in the env of `python`."""
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(p):\n try: return m.version(p)\n except m.PackageNotFoundError: return None\n"
            "print(json.dumps({p: v(p) for p in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def file_states(tree):
    """(size, mtime) of every file under tree: a write through a hard link would show in the base env."""
    states = {}
    for folder, _, files in os.walk(tree):
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            states[os.path.relpath(path, tree)] = (st.st_size, st.st_mtime_ns)
    return states


def kernel_environment(env_dir, jupyter_path, ipython_dir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") or k in PIP_NETWORK_SETTINGS or os.environ.get("ENV_TEST_KEEP_PIP_CONFIG")}
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MNIST_SEED"):
        env.pop(var, None)
    if not os.environ.get("ENV_TEST_KEEP_PIP_CONFIG"):
        env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no config file at all
    env.update(MNIST_FAST="0" if os.environ.get("ENV_TEST_FULL") else "1", JUPYTER_PATH=str(jupyter_path), IPYTHONDIR=str(ipython_dir),
               PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",  # `!pip` finds the env's pip
               PYDEVD_DISABLE_FILE_VALIDATION="1")  # debugpy's note on frozen modules, kernel log only
    return env


def register_kernel(env_dir, jupyter_path, name, env):
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(env_dir / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", "env": {"PATH": env["PATH"]},
    }, indent=1))


def cell_label(index, cell):
    lines = [l for l in "".join(cell["source"]).splitlines() if l.strip() and not l.startswith("# NBVAL")]
    return f"cell {index} (`{lines[0][:80] if lines else ''}`)"


def notebook_problems(executed):
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    problems = []
    for index, cell in enumerate(executed["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                where = ansi.sub("", "\n".join(output.get("traceback", [])[-2:]))[-1500:]
                problems.append(f"{cell_label(index, cell)} raised {output['ename']}: {output['evalue']}\n{where}")
            elif output["output_type"] == "stream" and output["name"] == "stderr":
                problems.append(f"{cell_label(index, cell)} wrote to stderr:\n{''.join(output['text']).rstrip()}")
            else:  # `%pip`/`!cmd` output reaches the notebook as stdout: hold it to test_notebook_hygiene's rule
                text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                if WARNING_WORDS.search(text) or FALLBACK_WORDS.search(text):
                    problems.append(f"{cell_label(index, cell)} printed a warning or fallback:\n{text.strip()[:1500]}")
    return problems


@pytest.mark.parametrize("name", RUNTIMES)
def test_notebook_runs_cleanly(name, tmp_path):
    spec = make_env.spec_path(name)
    try:
        make_env.find_python(make_env.spec_python_version(spec))
    except make_env.PythonNotFound as err:
        pytest.skip(f"{name}: {err}")

    start = time.perf_counter()
    base = make_env.ensure_env(name)
    base_before = file_states(base)
    run_env = make_env.clone_env(base, RUNS_DIR / name)
    subprocess.run([str(run_env / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", *NEEDED], check=True, capture_output=True)
    versions_before = installed_versions(run_env / "bin" / "python")
    tested = pinned_versions(NOTEBOOK)
    absent_before = [p for p, v in installed_versions(run_env / "bin" / "python", tested).items() if v is None]

    kernel = f"mnist-{name}-imitation"
    env = kernel_environment(run_env, tmp_path / "jupyter", tmp_path / "ipython")
    register_kernel(run_env, tmp_path / "jupyter", kernel, env)
    workdir = tmp_path / "work"  # the notebook writes artifacts/ next to itself: keep the repo's intact
    workdir.mkdir()
    shutil.copy2(NOTEBOOK, workdir / NOTEBOOK.name)
    (workdir / "data").symlink_to(ROOT / "data", target_is_directory=True)
    # a hosted runtime has matplotlib's font cache built already; the first build says so on stderr
    subprocess.run([str(run_env / "bin" / "python"), "-c", "import matplotlib.font_manager"],
                   env=env, capture_output=True, check=True)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    executed_path = OUT_DIR / f"{name}.ipynb"
    executed_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
               "--KernelManager.transport=ipc", "--ExecutePreprocessor.store_widget_state=False",  # as the Makefile
               f"--ExecutePreprocessor.kernel_name={kernel}", f"--ExecutePreprocessor.timeout={TIMEOUT}",
               str(workdir / NOTEBOOK.name), "--output-dir", str(OUT_DIR), "--output", executed_path.name]
    try:
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: the notebook did not finish within {TIMEOUT} s (ENV_TEST_TIMEOUT)")
    if result.returncode or not executed_path.exists():
        pytest.fail(f"{name}: nbconvert failed ({result.returncode}):\n{result.stderr[-4000:]}")

    problems = notebook_problems(json.loads(executed_path.read_text(encoding="utf-8")))
    versions_after = installed_versions(run_env / "bin" / "python")
    for package, version in versions_before.items():
        if versions_after[package] != version:
            problems.append(f"the notebook replaced {package} {version} with {versions_after[package]}")
    missing = [p for p, v in installed_versions(run_env / "bin" / "python", NEEDED).items() if v is None]
    if missing:
        problems.append(f"after the run these are still not installed: {', '.join(missing)}")
    installed_now = installed_versions(run_env / "bin" / "python", absent_before)
    print(f"{name}: the first cell installed " + ", ".join(f"{p} {v}" for p, v in installed_now.items() if v))
    for package, version in installed_now.items():  # new packages come at the versions the notebook was tested with
        if version is not None and version != tested[package]:
            problems.append(f"the first cell installed {package} {version}, not the tested {tested[package]}")
    if not set(NEEDED) <= set(absent_before):
        problems.append(f"{', '.join(NEEDED)} was already installed, so the install path of the first cell was not tested")
    changed = sorted(p for p, s in file_states(base).items() if base_before.get(p) != s)
    if changed:  # must not happen; make the next run rebuild the base
        (base / make_env.STAMP_NAME).unlink(missing_ok=True)
        problems.append(f"the run modified the base env {base} through a hard link: {changed[:10]}")
    print(f"{name}: {time.perf_counter() - start:.0f} s, executed copy in {executed_path}")
    if problems:
        pytest.fail(f"{name} ({spec.relative_to(ROOT)}; executed copy: {executed_path.relative_to(ROOT)}): "
                    f"{len(problems)} problem(s)\n\n" + "\n\n".join(problems), pytrace=False)
