"""Shared fixtures: the real CIFAR-10 copy (prepared once per session) and small subsets of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from essl_core.data import ImageData, cache_path, load_cifar10

REPO = Path(__file__).resolve().parent.parent
SHARED_COPY = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SHARED_IMAGENETTE = REPO.parent / "shared" / "data" / "imagenette2-224.tar.gz"


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A data root holding the real CIFAR-10 cache: $ESSL_DATA (or ./data) if prepared, else built from the
    shared JPEG copy (or $ESSL_CIFAR_SOURCE). Fails, never skips, when no real copy can be found."""
    for root in (os.environ.get("ESSL_DATA"), REPO / "data"):
        if root and cache_path(root).exists():
            return Path(root)
    source = Path(os.environ.get("ESSL_CIFAR_SOURCE", SHARED_COPY))
    if not source.exists():
        pytest.fail(f"no CIFAR-10 cache and no source at {source}; run `make data` or set ESSL_CIFAR_SOURCE")
    from data_scripts.cifar10 import prepare

    root = tmp_path_factory.mktemp("data")
    prepare(source, root)
    return root


@pytest.fixture(scope="session")
def imagenette_root(tmp_path_factory) -> Path:
    """A data root holding the real 64-px Imagenette cache: $ESSL_DATA (or ./data) if prepared, else built from
    the shared copy (or $ESSL_IMAGENETTE_SOURCE). Fails, never skips, when no real copy can be found."""
    from essl_core.imagenet_data import cache_path as imagenet_cache

    for root in (os.environ.get("ESSL_DATA"), REPO / "data"):
        if root and imagenet_cache("imagenette", 64, "raw", root).exists():
            return Path(root)
    source = Path(os.environ.get("ESSL_IMAGENETTE_SOURCE", SHARED_IMAGENETTE))
    if not source.exists():
        pytest.fail(f"no Imagenette cache and no source at {source}; run `make data` or set ESSL_IMAGENETTE_SOURCE")
    from data_scripts.imagenet import prepare

    root = tmp_path_factory.mktemp("imagenet-data")
    prepare(source, root, side=64)
    return root


@pytest.fixture(scope="session")
def cifar(cifar_root) -> ImageData:
    return load_cifar10(cifar_root)


@pytest.fixture(scope="session")
def small_cifar(cifar) -> ImageData:
    """640 training and 200 test images of the real copy, class-balanced."""
    return cifar.subset(640, 200, seed=0)


@pytest.fixture(autouse=True)
def _threads():
    # Deterministic, comparable CPU runs; the suite itself is single-process. $OMP_NUM_THREADS, where set, wins:
    # beside a long run on the other core, two threads here would run about ten times slower than one.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def serve_folder():
    """Serve folders over HTTP on 127.0.0.1 (a download test's stand-in for an official address): call it with
    a folder, get the base URL; the servers stop after the test."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep stderr for the script's own one line
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:  # a client that hangs up early is not news
            pass

    servers = []

    def serve(folder: Path) -> str:
        server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
