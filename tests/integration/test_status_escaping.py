"""%spark status against a master whose /json/ carries markup and long non-ASCII names
(issue 14, items 4 and 9). The master here is a plain HTTP server answering /json/ the way
Spark's does; the kernel is real and starts no Spark session (SPARKERNEL_WARM=false)."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from kernels import Kernel, outputs_of

pytestmark = pytest.mark.timeout(120)

EVIL = '<img src=x onerror="alert(1)">'
LONG_NAME = "\u00e9" * 40 + "x"  # cut at 32 bytes: inside an é


def master_json() -> dict:
    return {
        "url": "spark://127.0.0.1:7077", "status": "ALIVE" + EVIL, "cores": 2, "coresused": 1,
        "memory": 2048, "memoryused": 512,
        "workers": [{"id": "w", "host": "h" + EVIL, "port": 1, "state": "ALIVE" + EVIL,
                     "cores": 2, "coresused": 1, "memory": 2048, "memoryused": 512}],
        "activeapps": [
            {"id": "app-1" + EVIL, "name": "n" + EVIL, "cores": 1, "state": "RUNNING" + EVIL,
             "memoryperexecutor": 512, "duration": 1000},
            {"id": "app-2", "name": LONG_NAME, "cores": 0, "state": "WAITING",
             "memoryperexecutor": 512, "duration": 1000},
        ],
    }


@pytest.fixture
def fake_master():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(master_json()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_status_escapes_the_master_and_cuts_names_on_characters(fake_master):
    k = Kernel(env={"SPARK_MASTER_URL": "spark://127.0.0.1:1", "SPARKERNEL_WARM": "false",
                    "SPARKERNEL_MASTER_UI_URL": fake_master})
    try:
        reply, out = k.execute("%spark status", timeout=60)
        assert reply["content"]["status"] == "ok"
        shown = outputs_of(out, "display_data")
        assert shown, [m["msg_type"] for m in out]
        html = "".join(d["content"]["data"].get("text/html", "") for d in shown)
        text = "".join(d["content"]["data"].get("text/plain", "") for d in shown)
        assert "app-2" in html and "app-2" in text, "the table went out empty"
        assert "<img" not in html
        assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 4, html
        assert "\u00e9" * 16 in text and "\ufffd" not in text
    finally:
        k.shutdown()
