"""Shared fixtures: the notebook's own functions, the data, and the model the notebook saved."""

import ast
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "mnist_cnn.ipynb"
MODEL_PATH = ROOT / "artifacts" / "mnist_cnn.keras"      # Part I's ten-digit classifier
READER_PATH = ROOT / "artifacts" / "digit_reader.keras"   # Part II's model: eleven answers, calibrated
SUMMARY_PATH = ROOT / "artifacts" / "summary.json"
WARNING_WORDS = re.compile(r"Warning|WARNING|Traceback|deprecated")  # no output of the notebook may match
sys.path.insert(0, str(ROOT / "scripts"))


def notebook_cells(tag=None, path=NOTEBOOK):
    """Code cells of the committed notebook (or of `path`), optionally only those carrying `tag`."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code"
            and (tag is None or tag in c.get("metadata", {}).get("tags", []))]


def tagged_sources(tag, path=NOTEBOOK):
    """The source code of the notebook's cells tagged `tag`."""
    return ["".join(c["source"]) for c in notebook_cells(tag, path)]


def pinned_versions(path=NOTEBOOK):
    """The versions the notebook's first cell installs a missing package at: its TESTED dict, {name: version}."""
    tree = ast.parse("".join(notebook_cells(path=path)[0]["source"]))
    return next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TESTED")


@pytest.fixture(scope="session")
def nb():
    """A namespace holding what the notebook's `library` cells define (imports, config, functions)."""
    os.chdir(ROOT)
    namespace = {}
    for cell in notebook_cells("library"):
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.fixture(scope="session")
def mnist(nb):
    """The verified MNIST arrays (x_train, y_train, x_test, y_test) from data/mnist.npz."""
    if not nb["DATA_PATH"].exists():
        pytest.fail(f"{nb['DATA_PATH']} is missing: run `make data` (or `python scripts/make_mnist_npz.py`) first")
    return nb["load_mnist"](nb["DATA_PATH"])


@pytest.fixture(scope="session")
def saved_model(nb):
    """The model the notebook saved in artifacts/."""
    if not MODEL_PATH.exists():
        pytest.fail(f"{MODEL_PATH} is missing: the notebook writes it, so run it first "
                    "(`make test` runs it through nbval before these tests)")
    return nb["keras"].models.load_model(MODEL_PATH)


@pytest.fixture(scope="session")
def saved_reader(nb):
    """The model that can say "not a digit", as the notebook saved it: calibrated, with its threshold."""
    if not READER_PATH.exists():
        pytest.fail(f"{READER_PATH} is missing: the notebook writes it, so run it first (`make test` does)")
    return nb["load_reader"](READER_PATH)


class StandIn:
    """A model whose answer does not depend on training: it returns fixed probabilities for every image,
    and keeps what it was given, for tests of the code around the model."""

    def __init__(self, probs, threshold=None):
        self.probs, self.seen = np.asarray(probs, np.float32), []
        if threshold is not None:
            self.threshold = threshold

    def predict_on_batch(self, x):
        self.seen.append(np.asarray(x))
        return np.tile(self.probs, (len(x), 1))


@pytest.fixture(scope="session")
def summary():
    """The numbers of the notebook's last run (artifacts/summary.json)."""
    if not SUMMARY_PATH.exists():
        pytest.fail(f"{SUMMARY_PATH} is missing: run the notebook first (`make test` runs it through nbval)")
    return json.loads(SUMMARY_PATH.read_text())


@pytest.fixture
def digit_seven():
    """A dark-on-light drawing of a 7 on an off-white colour canvas, off-centre."""
    from PIL import Image, ImageDraw
    canvas = Image.new("RGB", (120, 160), (236, 232, 222))
    pen = ImageDraw.Draw(canvas)
    pen.line([(30, 40), (95, 36), (60, 130)], fill=(40, 40, 60), width=9)
    return np.asarray(canvas)


def pytest_configure(config):
    config.addinivalue_line("markers", "environments: runs the notebook in Colab/Kaggle imitations "
                                       "(slow, needs the package index); select with -m environments")
