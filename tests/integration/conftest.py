import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))

from cluster import LocalCluster  # noqa: E402
from kernels import Kernel  # noqa: E402

# The kernel-core tests run without a warm Spark session (a JVM per kernel would only slow
# them down); the Spark tests turn it on for their kernels.
os.environ.setdefault("SPARKERNEL_WARM", "false")
os.environ.setdefault("SPARKERNEL_BIND_ADDRESS", "127.0.0.1")


def pytest_configure(config):
    # `make test` (CI) leaves these out with -m "not long"; `make test-all` runs them. They
    # are variants of what the rest already checks (a hundred interrupts where the others
    # send one, the JVM archive's file dance, the papermill twin of a notebook), minutes
    # each, and their timing depends most on the machine's load.
    config.addinivalue_line("markers", "long: a slow variant left to make test-all")


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.shutdown()


@pytest.fixture(scope="session")
def _healthy_cluster():
    with LocalCluster(workers=1, cores=2, memory="1g") as c:
        yield c


@pytest.fixture(scope="module")
def healthy_cluster(_healthy_cluster):
    """One local cluster (a master and a 2-core, 1 GiB worker) shared by the modules
    that only need a healthy one: started once per run instead of once per module. Each
    module gets it with no application left running by the module before (a module that
    restarts the master or kills a worker starts a cluster of its own)."""
    import time
    deadline = time.monotonic() + 60
    while True:
        apps = [a.get("name") for a in _healthy_cluster.json().get("activeapps", [])]
        workers = [w for w in _healthy_cluster.json().get("workers", []) if w.get("state") == "ALIVE"]
        if not apps and workers:
            return _healthy_cluster
        if time.monotonic() > deadline:
            pytest.fail("the shared cluster still runs %s or has no alive worker after 60 s: the "
                        "module before left a session running" % apps)
        time.sleep(0.5)
