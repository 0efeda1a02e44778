import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))

from kernels import Kernel  # noqa: E402

# The kernel-core tests run without a warm Spark session (a JVM per kernel would only slow
# them down); the Spark tests turn it on for their kernels.
os.environ.setdefault("SPARKERNEL_WARM", "false")
os.environ.setdefault("SPARKERNEL_BIND_ADDRESS", "127.0.0.1")


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.shutdown()
