"""`make install PREFIX=...` gives a kernel that runs from the installed tree alone."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from kernels import Kernel, outputs_of

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_make_install_prefix(tmp_path):
    build = os.environ.get("SPARKERNEL_BUILD_DIR", "build")
    subprocess.run(["make", "-s", f"BUILD={build}", "install", f"PREFIX={tmp_path}",
                    f"PYTHON={sys.executable}"], cwd=ROOT, check=True, capture_output=True)
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "sparkernel"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][0] == str(tmp_path / "bin" / "sparkernel")
    assert spec["display_name"] == "PySpark (sparkernel)"
    assert spec["language"] == "python"
    assert {"logo-32x32.png", "logo-64x64.png"} <= {p.name for p in spec_dir.iterdir()}
    pydir = spec["argv"][spec["argv"].index("--pythonpath") + 1]
    assert pydir.startswith(str(tmp_path))
    from jupyter_client.kernelspec import KernelSpecManager

    k = Kernel("sparkernel", ksm=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]))
    try:
        _, out = k.execute("import sparkernel_executor; sparkernel_executor.__file__")
        path = outputs_of(out, "execute_result")[0]["content"]["data"]["text/plain"]
        assert str(tmp_path) in path
    finally:
        k.shutdown()
