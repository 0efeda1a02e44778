"""Two simulated hosts (tests/support/netns.py): the Spark master and a worker in one network
namespace (10.200.n.1), the kernel in another (10.200.n.2), joined by a veth pair.

- The kernel derives its advertised address (its interface towards the master, 10.200.n.2)
  and the fixed driver ports work across hosts: a job runs and `%spark status` shows
  spark.driver.host = 10.200.n.2 from "derived".
- A deliberately wrong advertised host (10.200.n.99, nobody's address): the cell that runs
  a job gets the WAITING report (the workers cannot reach the driver) instead of hanging,
  and can be interrupted.

How the client reaches the kernel: the whole jupyter_client side runs in the kernel's
namespace, as `ip netns exec <kernel ns> python this_file.py client <case>`; the kernel is
started by that client, so it inherits the namespace, binds its ZeroMQ ports on that
namespace's loopback, and the client connects there. Nothing is routed from the root
namespace. The client process prints one JSON object (what it saw) that the test asserts on.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))

RESULT_MARK = "@@RESULT@@"
REPORT_S = 10
# From the request, once the session is up: the cell's first query on a new JVM (planning,
# code generation; up to 10 s on a loaded 2-core machine), then the report's threshold.
REPORT_WITHIN_S = 25


# ---------------------------------------------------------------------------------------
# the client side, run inside the kernel's namespace


def _all_text(msgs: list[dict]) -> str:
    parts = []
    for m in msgs:
        c = m["content"]
        parts.append(c.get("text", ""))
        parts.append(json.dumps(c.get("data", {})))
        parts.append(c.get("evalue", ""))
    return "\n".join(parts)


def _master_json(ui: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(ui + "/json/", timeout=3) as r:
        return json.loads(r.read().decode())


def _summary(m: dict) -> dict:
    return {"coresused": m.get("coresused"), "cores": m.get("cores"),
            "apps": [{k: a.get(k) for k in ("id", "name", "state", "cores")}
                     for a in m.get("activeapps", [])]}


def _start_kernel(env: dict):
    from kernels import Kernel, variant_spec
    ksm = variant_spec("sparkernel")
    return Kernel(name="sparkernel", ksm=ksm, env=env)


def client_ok(env: dict) -> dict:
    from kernels import outputs_of
    k = _start_kernel(env)
    res: dict = {}
    try:
        reply, out = k.execute("spark.range(1000).count()", timeout=180)
        res["status"] = reply["content"]["status"]
        res["result"] = [m["content"]["data"]["text/plain"]
                         for m in outputs_of(out, "execute_result")]
        res["text"] = _all_text(out)[-3000:]
        reply, out = k.execute("%spark status", timeout=60)
        res["spark_status"] = "\n".join(m["content"]["data"].get("text/plain", "")
                                        for m in outputs_of(out, "display_data"))
        res["master"] = _summary(_master_json(env["SPARKERNEL_MASTER_UI_URL"]))
    finally:
        res["log_tail"] = k.shutdown()[-3000:]
    return res


def client_wrong_host(env: dict) -> dict:
    """A job with a wrong advertised host: wait for the kernel's WAITING report, then
    interrupt, and check the kernel is still usable."""
    from kernels import outputs_of
    k = _start_kernel(env)
    res: dict = {}
    try:
        reply, out = k.execute("sc.applicationId", timeout=180)  # the session is up
        msg_id = k.kc.execute("spark.range(1000).count()")
        t0 = time.monotonic()
        report = None
        while time.monotonic() - t0 < REPORT_WITHIN_S + 60:
            try:
                m = k.kc.get_iopub_msg(timeout=1)
            except Exception:
                continue
            if m["parent_header"].get("msg_id") != msg_id or m["msg_type"] != "display_data":
                continue
            text = m["content"]["data"].get("text/plain", "")
            if "no executors" in text:
                report = text
                break
        res["report_after_s"] = time.monotonic() - t0
        res["report"] = report
        k.km.interrupt_kernel()
        reply = k.shell_reply(msg_id, timeout=30)
        res["interrupted"] = reply["content"].get("ename")
        reply, out = k.execute("21 * 2", timeout=60)
        res["after"] = [m["content"]["data"]["text/plain"]
                        for m in outputs_of(out, "execute_result")]
        res["master"] = _summary(_master_json(env["SPARKERNEL_MASTER_UI_URL"]))
    finally:
        res["log_tail"] = k.shutdown()[-3000:]
    return res


def client_main(case: str, env_json: str) -> int:
    env = json.loads(env_json)
    # conftest's default bind address (loopback) would keep executors on the other host out.
    os.environ.pop("SPARKERNEL_BIND_ADDRESS", None)
    fn = {"ok": client_ok, "wrong_host": client_wrong_host}[case]
    try:
        res = fn(env)
    except BaseException as e:  # reported to the test, which fails with it
        import traceback
        res = {"client_error": traceback.format_exc(), "repr": repr(e)}
    print(RESULT_MARK + json.dumps(res), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# the tests, run by pytest in the root namespace

if __name__ != "__main__":
    import pytest

    from netns import TwoHosts, unavailable

    pytestmark = pytest.mark.timeout(420)

    @pytest.fixture(scope="module")
    def hosts():
        reason = unavailable()
        if reason:
            pytest.skip(reason)
        with TwoHosts() as h:
            h.cluster = h.start_cluster(workers=1, cores=2, memory="1g")
            yield h

    def run_client(h, case: str, timeout: float, **extra: str) -> dict:
        c = h.cluster
        env = {"SPARK_MASTER_URL": c.master_url, "SPARKERNEL_MASTER_UI_URL": c.ui_url,
               "SPARKERNEL_WARM": "true", "SPARKERNEL_EXECUTOR_MEMORY": "512m",
               "SPARKERNEL_BIND_ADDRESS": "0.0.0.0",
               "SPARKERNEL_WAITING_REPORT_S": str(REPORT_S)}
        env.update(extra)
        cmd = h.exec_prefix(h.kernel_ns) + [sys.executable, __file__, "client", case,
                                            json.dumps(env)]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, err = p.communicate()
            pytest.fail("client in %s timed out; stderr:\n%s" % (h.kernel_ns, err[-3000:]))
        lines = [line for line in out.splitlines() if line.startswith(RESULT_MARK)]
        assert lines, "client printed no result (rc %s); stderr:\n%s" % (p.returncode,
                                                                         err[-3000:])
        res = json.loads(lines[-1][len(RESULT_MARK):])
        assert "client_error" not in res, res["client_error"]
        return res

    def test_job_runs_across_hosts_with_derived_driver_host(hosts):
        res = run_client(hosts, "ok", timeout=300)
        assert res["status"] == "ok", res
        assert res["result"] == ["1000"], res
        status = res["spark_status"]
        line = [ln for ln in status.splitlines() if "spark.driver.host" in ln]
        assert line, status
        assert hosts.kernel_ip in line[0] and "derived" in line[0], line[0]

    def test_wrong_advertised_host_gets_waiting_report(hosts):
        wrong = hosts.kernel_ip.rsplit(".", 1)[0] + ".99"
        res = run_client(hosts, "wrong_host", timeout=300, SPARKERNEL_DRIVER_HOST=wrong)
        assert res["report"], res
        assert res["report_after_s"] <= REPORT_WITHIN_S, res
        assert "cannot reach this driver" in res["report"] and wrong in res["report"], res
        assert res["interrupted"] == "KeyboardInterrupt", res
        assert res["after"] == ["42"], res

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "client":
        sys.exit(client_main(sys.argv[2], sys.argv[3]))
    print("usage: (inside the kernel namespace) %s client ok|wrong_host ENV_JSON" % sys.argv[0])
    sys.exit(2)
