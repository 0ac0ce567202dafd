#!/usr/bin/env python3
"""Build a cached virtual environment that imitates a hosted notebook runtime (Colab, Kaggle).

    python scripts/make_env.py colab            # create or refresh .envs/colab-base
    python scripts/make_env.py kaggle --force   # rebuild even if the spec did not change
    python scripts/make_env.py colab --clone /some/dir   # also make a cheap throw-away copy of it

The spec is tests/envs/<name>.txt: a pip requirements file listing the runtime's complete dependency
closure with exact versions, plus a `# python: X.Y` comment naming the interpreter. The base env is
installed with --no-deps so it holds exactly those packages (as the hosted runtime does, e.g. Colab has
no jedi). A stamp (SHA-256 of the spec and the interpreter version) makes an unchanged second call a
no-op. Standard library only.

Always run tools in these envs as `<env>/bin/python -m pip|ipykernel|...`: a clone made by hard links
keeps console scripts (bin/pip, bin/jupyter) whose shebang points at the base env's interpreter.
"""

import argparse
import errno
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "tests" / "envs"
ENVS_DIR = ROOT / ".envs"
STAMP_NAME = ".make_env-stamp"
STAMP_FORMAT = "1"  # bump when the way envs are built changes, to force rebuilds


class PythonNotFound(RuntimeError):
    """The interpreter a spec asks for is not installed."""


def spec_path(name):
    path = SPEC_DIR / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in SPEC_DIR.glob("*.txt"))
        raise SystemExit(f"make_env: no spec {path} (known: {', '.join(known) or 'none'})")
    return path


def spec_python_version(spec):
    match = re.search(r"^#\s*python:\s*(\d+\.\d+)\s*$", spec.read_text(encoding="utf-8"), re.M)
    if not match:
        raise SystemExit(f"make_env: {spec} has no '# python: X.Y' line")
    return match.group(1)


def _version_of(python):
    try:
        out = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(version):
    """Path of an installed python<version> (e.g. '3.13'); raise PythonNotFound naming what to install."""
    candidates = []
    override = os.environ.get("MAKE_ENV_PYTHON_" + version.replace(".", "_"))
    if override:
        candidates.append(override)
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True)
        if out.returncode == 0:
            candidates += [str(Path(p) / "bin" / f"python{version}") for p in out.stdout.split(":") if p.strip()]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    patch = lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.parent.name)]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), key=patch, reverse=True)
    if shutil.which(f"python{version}"):
        candidates.append(shutil.which(f"python{version}"))
    for candidate in candidates:
        found = _version_of(candidate)
        if found and found.rsplit(".", 1)[0] == version:
            return Path(candidate), found
    raise PythonNotFound(
        f"Python {version} is not installed (looked at `pyenv prefix {version}`, "
        f"{pyenv_root}/versions/{version}.*/bin/python{version} and python{version} on PATH). "
        f"Install it with `pyenv install {version}` (or set MAKE_ENV_PYTHON_{version.replace('.', '_')}"
        f"=/path/to/python{version}).")


def stamp_text(spec, python_version):
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    return f"format {STAMP_FORMAT}\nspec-sha256 {digest}\npython {python_version}\n"


def env_dir(name):
    return ENVS_DIR / f"{name}-base"


def is_current(name):
    """True if .envs/<name>-base exists, works and was built from the current spec."""
    env, spec = env_dir(name), spec_path(name)
    stamp = env / STAMP_NAME
    if not stamp.is_file():
        return False
    recorded = stamp.read_text()
    version = dict(line.split(" ", 1) for line in recorded.splitlines() if " " in line).get("python")
    return version is not None and _version_of(env / "bin" / "python") == version \
        and recorded == stamp_text(spec, version)


def _run(cmd, log):
    log.write(f"$ {' '.join(map(str, cmd))}\n")
    log.flush()
    result = subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"make_env: command failed ({result.returncode}): {' '.join(map(str, cmd))}\n"
                         f"see {log.name}")


def ensure_env(name, force=False, echo=print):
    """Create or refresh .envs/<name>-base; return its path. Raises PythonNotFound."""
    spec = spec_path(name)
    version = spec_python_version(spec)
    env = env_dir(name)
    ENVS_DIR.mkdir(exist_ok=True)
    with open(ENVS_DIR / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, also across pytest workers
        if not force and is_current(name):
            echo(f"make_env: {env} is up to date with {spec.relative_to(ROOT)}")
            return env
        python, full_version = find_python(version)
        start = time.perf_counter()
        echo(f"make_env: building {env} with {python} (Python {full_version}) from {spec.relative_to(ROOT)}")
        if env.exists():
            shutil.rmtree(env)
        log_path = ENVS_DIR / f"{name}-base.log"
        with open(log_path, "w") as log:
            _run([python, "-m", "venv", env], log)
            py = env / "bin" / "python"
            pip = [py, "-m", "pip", "--disable-pip-version-check", "--no-input"]
            lines = [l.strip() for l in spec.read_text(encoding="utf-8").splitlines()]
            pip_pin = [l for l in lines if re.match(r"pip\s*==", l)]
            if pip_pin:  # the runtime's own pip first: it is what the notebook's `%pip install` will run
                _run(pip + ["install", "--quiet", *pip_pin], log)
            _run(pip + ["install", "--quiet", "--no-deps", "-r", spec], log)
            check = subprocess.run([str(c) for c in pip + ["check"]], capture_output=True, text=True)
            log.write("$ pip check\n" + check.stdout + check.stderr)
        if check.returncode:
            report = [l for l in (check.stdout + check.stderr).splitlines()
                      if l.strip() and not l.startswith("WARNING: Location")]  # noise from some pip configs
            echo("make_env: `pip check` reports (expected where the runtime itself has the same gaps):\n  "
                 + "\n  ".join(report))
        (env / STAMP_NAME).write_text(stamp_text(spec, full_version))
        echo(f"make_env: built {env} in {time.perf_counter() - start:.0f} s (log: {log_path})")
        return env


def clone_env(base, dest):
    """A throw-away copy of the env `base` at `dest`, made of hard links (instant, no extra disk).

    Safe because pip never writes into an existing file: it installs new files and unlinks old ones,
    so changes in the copy leave the base untouched. Falls back to a real copy across file systems.
    Use `dest/bin/python -m pip`, not `dest/bin/pip` (whose shebang names the base's python).
    """
    base, dest = Path(base), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copy2(src, dst)

    shutil.copytree(base, dest, symlinks=True, copy_function=link_or_copy,
                    ignore=shutil.ignore_patterns(STAMP_NAME))
    # bin/pip, bin/jupyter, bin/activate... name the base env: give the copy its own versions (new files,
    # so the base's stay as they are), so that `!pip install` in a kernel with dest/bin on PATH is safe.
    old, new = str(base.resolve()).encode(), str(dest.resolve()).encode()
    for script in (dest / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        content = script.read_bytes()
        if not content.startswith(b"\x7fELF") and old in content:
            mode = script.stat().st_mode
            script.unlink()
            script.write_bytes(content.replace(old, new))
            script.chmod(mode)
    return dest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a spec in tests/envs/ (colab, kaggle)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    parser.add_argument("--clone", metavar="DIR", help="then make a hard-linked throw-away copy at DIR")
    args = parser.parse_args(argv)
    try:
        env = ensure_env(args.name, force=args.force)
    except PythonNotFound as err:
        print(f"make_env: {err}", file=sys.stderr)
        return 3
    if args.clone:
        print(f"make_env: cloned to {clone_env(env, args.clone)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
