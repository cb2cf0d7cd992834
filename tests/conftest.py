"""What the tests share: where the samples are, the CLI runner, the shape of an error, small
image makers, and a local HTTP server on 127.0.0.1 for the download tests.

Test modules import the plain helpers by name (``from conftest import run``: ``tests`` is on the
path); pytest hands out the fixtures.
"""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_images"
PHOTOS = tuple(SAMPLES / name for name in ("astronaut.png", "chelsea.png", "coffee.png"))
# The project's read-only material (MNIST's IDX files) sits beside the checkout, in CI as here.
SHARED = REPO.parent / "shared"

_runner = CliRunner()


def run(*args, stdin=None):
    """``convcli ARGS`` in-process; stdout and stderr apart."""
    from convcli.cli.app import app

    return _runner.invoke(app, [str(a) for a in args], input=stdin)


def failed(result, *words) -> bool:
    """One 'Error: ...' line naming every word, exit code 1, nothing on stdout, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert result.stdout == ""
    return True


def grey_png(path: Path, values) -> Path:
    """An 8-bit grey PNG of ``values``."""
    Image.fromarray(np.asarray(values, dtype=np.uint8)).save(path)
    return path


def idx_file(array: np.ndarray) -> bytes:
    """``array`` as an uncompressed IDX file (images if 3-D, labels if 1-D)."""
    magic = 2051 if array.ndim == 3 else 2049
    return (
        magic.to_bytes(4, "big")
        + b"".join(n.to_bytes(4, "big") for n in array.shape)
        + array.astype(np.uint8).tobytes()
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (behaviour, body)``; "drop" closes after half the body."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        behaviour, body = self.server.routes.get(self.path, ("missing", b""))
        if behaviour == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port, for the module's tests."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.requests = {}, []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def serve(server, prefix: str, files: dict[str, bytes], behaviour: str = "ok") -> str:
    """Puts ``files`` on ``server`` under ``/prefix/``; returns that URL."""
    for name, body in files.items():
        server.routes[f"/{prefix}/{name}"] = (behaviour, body)
    return f"{server.base}/{prefix}/"


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
