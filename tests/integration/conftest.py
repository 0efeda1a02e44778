import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))

from kernels import Kernel  # noqa: E402


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.shutdown()
