"""The draw-a-digit canvas in a real front end: JupyterLab in headless Chromium, driven by Selenium.

A small notebook (the notebook's "library" cells, the saved reader with its threshold, the "canvas" cells) is run in
JupyterLab; a 7 is drawn on the canvas with the mouse, and the page must show the answer that read_drawing gives,
in this process, for the very picture the canvas holds; Clear must empty the outputs; a scribble drawn next must be
answered the same way. The page is compared with read_drawing, not with a fixed digit, so that the test is about the
front end and holds for any trained reader (test_canvas.py measures the reading over sets of drawings).
Screenshots go to artifacts/canvas_browser*.png. Needs Debian's `chromium` and `chromium-driver`; without them the
test is skipped, except under CI (CI=true), where it fails.
CANVAS_FRONTEND=notebook runs it in Jupyter Notebook 7 instead of JupyterLab.
CANVAS_NOTEBOOK=<path>: as in test_canvas.py, take the "standin" and "canvas" cells from that notebook.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import NOTEBOOK, READER_PATH, ROOT, tagged_sources

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"
SCREENSHOT = ROOT / "artifacts" / "canvas_browser.png"
TOTAL_SECONDS = 170  # the whole test, start to finish
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000"]


def require_browser():
    """Skip (or under CI fail) when the browser, its driver or Selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium (pip install -r requirements.txt)")
    if missing:
        message = f"the browser test needs {', '.join(missing)}; install the browser with: {INSTALL}"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message)
        pytest.skip(message)


class Deadline:
    """One time budget for the whole test; every wait gets at most its own limit and what is left of it."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def wait(self, step, condition, limit, poll=0.25, detail=lambda: ""):
        """Poll `condition` until it returns something truthy; fail naming `step` when time is up."""
        stop = min(self.end, time.monotonic() + limit)
        while True:
            try:
                result = condition()
            except Exception as error:  # the page may be mid-load; keep the last error for the message
                result, last = None, error
            else:
                last = None
            if result:
                return result
            if time.monotonic() >= stop:
                extra = detail() or (f"last error: {last!r}" if last else "")
                pytest.fail(f"timed out after {limit:.0f} s (or the test's {TOTAL_SECONDS} s budget) "
                            f"waiting for: {step}. {extra}".strip())
            time.sleep(poll)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder):
    """The cells the canvas needs, as a notebook in `folder`; returns its file name."""
    import nbformat

    source = Path(os.environ.get("CANVAS_NOTEBOOK", NOTEBOOK))
    standins = tagged_sources("standin", source) if source != NOTEBOOK else []
    if not any("reader = " in code for code in standins):
        if not READER_PATH.exists():
            pytest.fail(f"{READER_PATH} is missing: run the notebook first (`make test` does)")
        standins.append(f"reader = load_reader({str(READER_PATH)!r})")
    canvas = tagged_sources("canvas", source)
    assert canvas, f"{source} has no code cell tagged 'canvas'"
    cells = tagged_sources("library") + standins + canvas
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nbformat.write(nb, folder / "canvas_test.ipynb")
    (folder / "data").symlink_to(ROOT / "data")  # the library cells name data/mnist.npz relative to the notebook
    return "canvas_test.ipynb"


@pytest.fixture
def jupyter(tmp_path):
    """A Jupyter server (JupyterLab, or Notebook 7 with CANVAS_FRONTEND=notebook) on 127.0.0.1; stopped after."""
    require_browser()
    frontend = os.environ.get("CANVAS_FRONTEND", "lab")
    port, token = free_port(), secrets.token_hex(16)
    app = "LabApp" if frontend == "lab" else "JupyterNotebookApp"
    command = [str(Path(sys.executable).parent / "jupyter"), frontend, "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
               f"--{app}.expose_app_in_browser=True", f"--{app}.workspaces_dir={tmp_path / 'workspaces'}"]
    if os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        yield {"base": base, "token": token, "frontend": frontend, "folder": tmp_path, "server": server,
               "log": tmp_path / "server.log"}
    finally:
        try:  # shut the kernels down through the API, then the server
            request = urllib.request.Request(f"{base}/api/kernels?token={token}")
            for kernel in json.load(urllib.request.urlopen(request, timeout=5)):
                urllib.request.urlopen(urllib.request.Request(
                    f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"), timeout=10)
        except Exception:
            pass
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()


@pytest.fixture
def browser(tmp_path):
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def read_in_process(nb):
    """read_drawing, run here with the saved reader: the text the page must show for a given picture."""
    if not READER_PATH.exists():
        pytest.fail(f"{READER_PATH} is missing: run the notebook first (`make test` does)")
    namespace = {**nb, "reader": nb["load_reader"](READER_PATH)}
    exec(tagged_sources("canvas")[0], namespace)  # the cell that defines read_drawing
    return lambda png: namespace["read_drawing"](png)[1]


def same_answer(shown, expected):
    """The answer line and the three digits listed agree; the percentages within 0.2 points (float rounding)."""
    (first, *rest), (first_expected, *rest_expected) = shown.splitlines(), expected.splitlines()
    pairs = [(line.split(": "), other.split(": ")) for line, other in zip(rest, rest_expected)]
    return first == first_expected and len(rest) == len(rest_expected) == 3 and all(
        a[0] == b[0] and abs(float(a[1].rstrip("%")) - float(b[1].rstrip("%"))) <= 0.2 for a, b in pairs)


def test_drawing_a_seven_in_the_browser(jupyter, browser, read_in_process):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By

    deadline = Deadline(TOTAL_SECONDS)
    name = write_notebook(jupyter["folder"])
    server_log = lambda: "Server log tail:\n" + jupyter["log"].read_text(errors="replace")[-1500:]  # noqa: E731

    def server_up():
        if jupyter["server"].poll() is not None:
            pytest.fail(f"the Jupyter server exited with code {jupyter['server'].returncode}. {server_log()}")
        return urllib.request.urlopen(f"{jupyter['base']}/api/status?token={jupyter['token']}", timeout=2)

    deadline.wait("the Jupyter server to answer", server_up, 60, detail=server_log)
    path = "lab/tree" if jupyter["frontend"] == "lab" else "notebooks"
    browser.set_page_load_timeout(30)
    try:
        browser.get(f"{jupyter['base']}/{path}/{name}?token={jupyter['token']}")
    except TimeoutException:
        pytest.fail(f"timed out after 30 s loading the {jupyter['frontend']} page")

    ready = """const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
               return !!(w && w.context && w.context.isReady && w.sessionContext && w.sessionContext.session
                         && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle');"""
    deadline.wait("the notebook to open with an idle kernel", lambda: browser.execute_script(ready), 60)
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    def canvas_or_error():
        """The canvas once it is shown; fails at once if a cell raised (run-all stops there)."""
        for output in browser.find_elements(By.CSS_SELECTOR, '[data-mime-type="application/vnd.jupyter.stderr"]'):
            if "Error" in output.text or "Traceback" in output.text:
                pytest.fail(f"a cell failed while running all cells:\n{output.text[-1500:]}")
        return browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output canvas")

    canvas = deadline.wait("the canvas to appear after running all cells", canvas_or_error, 90, poll=0.5)[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)

    def draw(strokes):
        """Each stroke: a start (offsets from the canvas centre) and the moves that follow, pen down."""
        for start, moves in strokes:
            pen = ActionChains(browser, duration=20).move_to_element_with_offset(canvas, *start).click_and_hold()
            for move in moves:
                pen.move_by_offset(*move)
            pen.release().perform()

    text = lambda: canvas.find_element(By.XPATH, "../pre").text.strip()  # noqa: E731
    seen = canvas.find_element(By.XPATH, "../img")
    src = lambda: browser.execute_script("return arguments[0].getAttribute('src')", seen)  # noqa: E731

    # A 7: the bar from left to right, then the stem down and to the left.
    draw([((-80, -90), [(40, 0)] * 4 + [(-12, 24)] * 8)])
    shown = deadline.wait("an answer to appear beside the canvas after drawing", text, 30)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    expected = read_in_process(browser.execute_script("return arguments[0].toDataURL()", canvas))
    assert same_answer(shown, expected), f"drew a 7; the page shows:\n{shown}\nread_drawing says:\n{expected}"
    assert src().startswith("data:image/png;base64,"), "the 28x28 view is shown"

    canvas.find_element(By.XPATH, "../button").click()  # Clear
    deadline.wait("Clear to empty the answer and the 28x28 view", lambda: not text() and src() == "", 15)

    # A scribble: three zigzags across one another.
    draw([((-110, -100), [(45, 70), (45, -70)] * 2 + [(30, 120)]), ((-100, 90), [(60, -40), (20, 60), (60, -90), (-40, -50)]),
          ((100, -110), [(-70, 60), (-30, 120), (-80, -40)])])
    answer = lambda: text().splitlines()[0] if text() else ""  # noqa: E731
    deadline.wait("an answer to the scribble", answer, 30)
    SCREENSHOT.with_name("canvas_browser_scribble.png").parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT.with_name("canvas_browser_scribble.png")))
    expected = read_in_process(browser.execute_script("return arguments[0].toDataURL()", canvas))
    deadline.wait("the whole answer to the scribble", lambda: same_answer(text(), expected), 15,
                  detail=lambda: f"the page shows:\n{text()}\nread_drawing says:\n{expected}")
