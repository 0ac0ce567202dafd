"""The committed notebook is the clean record of one top-to-bottom run."""

import importlib.metadata
import json
import re

from conftest import NOTEBOOK, ROOT, WARNING_WORDS, pinned_versions

nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_python3_kernelspec():
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_every_cell_has_a_unique_id():
    """nbformat 4.5 requires cell ids; nbformat warns today and will refuse later."""
    ids = [c.get("id") for c in nb["cells"]]
    assert None not in ids, f"cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), "two cells share an id"


def test_execution_counts_run_one_to_n():
    assert [c["execution_count"] for c in code_cells] == list(range(1, len(code_cells) + 1))


def test_no_errors_stderr_or_warnings():
    for i, cell in enumerate(code_cells, 1):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {i} holds an error"
            assert out.get("name") != "stderr", f"cell {i} wrote to stderr: {''.join(out['text'])[:200]}"
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not WARNING_WORDS.search(text), f"cell {i}: {text[:200]}"


def test_every_code_cell_follows_prose():
    """Each visible code cell comes after prose; folded plumbing cells may follow one another."""
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and not cell["metadata"].get("jupyter", {}).get("source_hidden"):
            assert i > 0 and cells[i - 1]["cell_type"] == "markdown", f"code cell {i} has no prose before it"


def test_cells_stay_short():
    for cell in code_cells:
        lines = "".join(cell["source"]).splitlines()
        assert len(lines) <= 25, f"a code cell has {len(lines)} lines: {lines[0]!r}"


def test_full_mode_run_is_committed():
    config = next(c for c in code_cells if "FAST = " in "".join(c["source"]))
    printed = "".join("".join(o.get("text", "")) for o in config["outputs"])
    assert printed.startswith("Full mode"), "commit the outputs of a full-mode run, not MNIST_FAST=1"


def test_table_of_contents_links_resolve():
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, f"links without an anchor: {links - anchors}"


def test_no_widget_state_is_saved():
    assert "widgets" not in nb["metadata"], "the committed notebook must not carry widget state"


def test_first_code_cell_prepares_the_environment():
    first = "".join(code_cells[0]["source"])
    assert first.startswith("# @title Prepare the environment") and "-c" in first, "the install cell comes first"


def test_code_stays_within_its_budget():
    """The notebook teaches with at most 500 non-comment lines of code (issue 14)."""
    lines = [l for c in code_cells for l in "".join(c["source"]).splitlines() if l.strip() and not l.strip().startswith("#")]
    assert len(lines) <= 500, f"{len(lines)} non-comment code lines: cut before you add"


def test_plumbing_is_folded_away():
    """The environment, import and widget cells are collapsed (Jupyter) and forms (Colab); the first visible code is the task's."""
    folded = [c for c in code_cells if c["metadata"].get("jupyter", {}).get("source_hidden")]
    assert len(folded) >= 4 and all(c["metadata"].get("cellView") == "form" for c in folded)
    assert all("".join(c["source"]).startswith("# @title") for c in folded)
    first_visible = next(c for c in code_cells if c not in folded)
    assert "FAST = " in "".join(first_visible["source"]), "the first code a reader sees is the configuration"
    calls = [m.group() for c in code_cells for m in re.finditer(r"\.\s*_[a-z]\w*\(", "".join(c["source"]))]
    assert not calls, f"private-looking calls in the notebook: {calls}"


def test_first_cell_installs_the_pinned_versions():
    """Its pins are requirements.txt's, and every pin (the dependencies it names too) is what the pinned env holds."""
    tested = pinned_versions()
    required = dict(re.findall(r"^([\w.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    for name, version in tested.items():
        assert required.get(name, version) == version, f"{name}: the first cell pins {version}, requirements.txt {required[name]}"
        assert importlib.metadata.version(name) == version, f"{name} {version} is pinned, but the pinned env has another version"
    assert {"anywidget", "tensorflow"} <= set(tested)


def test_nbval_runs_another_seed_than_the_committed_run():
    """`make test` compares a run of another seed with the committed outputs: a cell whose output training can
    change, but which lacks the ignore marker, then fails on every machine, not only on another CPU."""
    config = next(c for c in code_cells if "FAST = " in "".join(c["source"]))
    committed = re.search(r"seed (\d+)", "".join("".join(o.get("text", "")) for o in config["outputs"])).group(1)
    makefile = (ROOT / "Makefile").read_text()
    nbval_seed = re.search(r"^NBVAL_SEED := (\d+)", makefile, re.M).group(1)
    assert nbval_seed != committed, f"nbval must run another seed than the committed seed {committed}"
    test_recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "MNIST_SEED=$(NBVAL_SEED)" in test_recipe and "--nbval" in test_recipe
