"""Offline by construction: outbound sockets are refused (in this process and in notebook kernels), the notebooks
run on the embedded default without touching the network, and a pretrained tag whose weights are not cached fails at
once, naming the cache and how to fill it."""

import json
import socket
import time
from pathlib import Path

import nbformat
import pytest

from conftest import NOTEBOOK_DIR, offline
from labkit.models import create_model
from labkit.models.clip import cached_pretrained
from labkit.runner import execute_notebook

NOTEBOOKS = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
PROBE = """
import json, socket
outcome = {}
try:
    socket.create_connection(("198.51.100.7", 443), timeout=2)   # TEST-NET-2: documentation range
    outcome["tcp"] = "connected"
except OSError as exc:
    outcome["tcp"] = str(exc)
try:
    socket.getaddrinfo("huggingface.co", 443)
    outcome["dns"] = "resolved"
except OSError as exc:
    outcome["dns"] = str(exc)
json.dump(outcome, open(output_dir + "/probe.json", "w"))
"""


def test_guard_refuses_outbound_allows_loopback_and_unix(tmp_path):
    log = tmp_path / "refused.log"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with offline(log):
        with socket.socket() as s, pytest.raises(OSError, match="offline guard: outbound connection to .*198.51"):
            s.connect(("198.51.100.7", 80))
        with pytest.raises(OSError, match="offline guard: .*198.51.100.7"):  # refused at the lookup already
            socket.create_connection(("198.51.100.7", 80), timeout=2)
        with pytest.raises(OSError, match="offline guard: name resolution of 'example.com'"):
            socket.getaddrinfo("example.com", 80)
        with socket.create_connection(server.getsockname(), timeout=2):  # loopback: allowed (gloo, local servers)
            pass
        a, b = socket.socketpair(socket.AF_UNIX)  # Unix sockets: allowed (kernels over ipc)
        a.close(), b.close()
    server.close()
    assert log.read_text().count("refused") == 3


def test_notebook_kernels_are_guarded(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("output_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(PROBE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    with offline(tmp_path / "refused.log"):
        execute_notebook(tmp_path / "probe.ipynb", tmp_path / "probe.out.ipynb", {"output_dir": str(tmp_path)})
    outcome = json.loads((tmp_path / "probe.json").read_text())
    assert "offline guard" in outcome["tcp"] and "offline guard" in outcome["dns"], outcome


@pytest.mark.notebook
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebooks_run_offline_on_the_embedded_default(stem, run_notebook, offline_log):
    out, _ = run_notebook(stem)  # shared with test_notebooks: every notebook run of the session is guarded
    assert (out / "metrics.json").exists()
    refused = offline_log.read_text() if offline_log.exists() else ""
    assert not refused, f"a notebook tried to reach the network:\n{refused}"


def test_uncached_pretrained_tag_fails_at_once_naming_the_cache(tmp_path):
    with offline(tmp_path / "refused.log"):
        t0 = time.perf_counter()
        with pytest.raises(FileNotFoundError) as err:
            create_model("ViT-B-16", pretrained="openai", cache_dir=str(tmp_path / "cache"))
        assert time.perf_counter() - t0 < 5
    message = str(err.value)
    assert str(tmp_path / "cache") in message and "download=True" in message and "checkpoint=" in message
    assert not (tmp_path / "refused.log").exists()  # it failed before trying the network
    with pytest.raises(ValueError, match="tags: openai"):
        create_model("RN50", pretrained="not-a-tag")


def test_cached_pretrained_finds_weights_in_the_cache(tmp_path):
    assert cached_pretrained("RN50", "openai", str(tmp_path))[0] is None
    (tmp_path / "RN50.pt").write_bytes(b"weights")  # open_clip's URL cache layout: <cache_dir>/<file of the URL>
    path, _ = cached_pretrained("RN50", "openai", str(tmp_path))
    assert Path(path) == tmp_path / "RN50.pt"
