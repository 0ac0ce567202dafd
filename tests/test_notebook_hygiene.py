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
    """A cell holds one idea: at most 40 lines, even where one step a line makes it long; 60 for folded plumbing."""
    for cell in code_cells:
        lines = "".join(cell["source"]).splitlines()
        cap = 60 if cell["metadata"].get("jupyter", {}).get("source_hidden") else 40
        assert len(lines) <= cap, f"a code cell has {len(lines)} lines: {lines[0]!r}"


def test_no_code_line_is_longer_than_100_characters():
    """A reader never scrolls sideways (ruff's E501 at 100)."""
    for cell in code_cells:
        for line in "".join(cell["source"]).splitlines():
            assert len(line) <= 100, f"{len(line)} characters: {line!r}"


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


def reading_minutes(cells):
    """The reading time of ../shared/tools/notebook_budget.py: words / 120 + code characters / 360 (comments and
    indentation not counted) + output lines / 20 + 1.5 per figure, a floor for a careful first reading."""
    words = chars = out = figures = 0
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            words += len(re.findall(r"[A-Za-z0-9][\w'’.,-]*", re.sub(r"<[^>]+>|\(http[^)]*\)", " ", source)))
            continue
        lines = [line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]
        chars += sum(len(line) for line in lines)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                figures += 1
            else:
                out += len("".join(output.get("text", data.get("text/plain", ""))).splitlines())
    return words / 120 + chars / 360 + out / 20 + 1.5 * figures


def test_each_part_keeps_to_the_reading_time_it_states():
    """The opening's table gives each part's reading time; the reading budget holds each part to it, Part I to
    40 minutes at most, and the whole notebook to 190."""
    parts, name = {}, "Opening"
    for cell in nb["cells"]:
        heading = re.search(r"^# (Part [IV]+)\b", "".join(cell["source"]), re.M) if cell["cell_type"] == "markdown" else None
        name = heading.group(1) if heading else name
        parts.setdefault(name, []).append(cell)
    table = "".join(nb["cells"][0]["source"])
    for part in ("Part I", "Part II", "Part III"):
        stated = int(re.search(rf"\[{part.split()[1]}\. [^]]*\]\(#[^)]*\) \|[^|]*\| about (\d+) min", table).group(1))
        minutes = reading_minutes(parts[part])
        assert minutes <= stated, f"{part}: {minutes:.1f} minutes by the budget, the notebook says about {stated}"
    assert reading_minutes(parts["Part I"]) <= 40
    assert reading_minutes(nb["cells"]) <= 190, f"the whole notebook: {reading_minutes(nb['cells']):.1f} minutes"


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
