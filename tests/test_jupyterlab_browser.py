"""JupyterLab in a real browser: start JupyterLab on a copy of notebooks/, open notebook 01 in headless Chromium
(Playwright driving Debian's chromium), run its first cells with the project's kernel, save a screenshot.

Skipped, with the reason, where no Chromium or no Playwright is installed (``make test`` installs Chromium from
the distribution's packages where it can; Playwright's own browser download needs a CDN that is not reachable
offline, so the system Chromium is used)."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def jupyterlab(tmp_path):
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("student", "outputs", ".ipynb_checkpoints"))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start; see {tmp_path / 'jupyterlab.log'}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (make test installs Debian's chromium as root)")
def test_notebook_01_runs_its_first_cells_in_jupyterlab(jupyterlab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    url, token = jupyterlab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/lab/tree/01_modality_gap.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # the kernel must be up before cells are sent (the status bar reads "… | Idle")
            page.wait_for_function("() => /\\|\\s*Idle/.test(document.querySelector('.jp-StatusBar-Widget, "
                                   "#jp-main-statusbar')?.innerText || '')", timeout=90_000)
            page.click(".jp-Notebook .jp-Cell >> nth=0")
            for _ in range(3):  # the story (markdown), the parameters cell, the imports cell
                page.keyboard.press("Shift+Enter")
            page.wait_for_function("""() => {
                const p = document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt');
                return p.length > 1 && p[0].textContent.includes('[1]') && p[1].textContent.includes('[2]'); }""",
                                   timeout=120_000)
            page.screenshot(path=str(tmp_path / "jupyterlab_01.png"))
            errors = page.eval_on_selector_all(".jp-Notebook .jp-OutputArea-output[data-mime-type*='error']",
                                               "els => els.map(e => e.textContent)")
            settings = page.eval_on_selector_all(".jp-Notebook .jp-CodeCell .jp-OutputArea",
                                                 "els => els[1] ? els[1].textContent : ''")
        finally:
            browser.close()
    assert not errors, errors
    assert "n_pairs" in settings  # the imports cell ended by displaying the profile's settings
    assert (tmp_path / "jupyterlab_01.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'jupyterlab_01.png'}")
