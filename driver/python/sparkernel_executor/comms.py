"""Comms the way ipykernel provides them: the `comm` package's create_comm and
get_comm_manager return ours, so ipywidgets and every other comm user work unchanged.
A comm message a cell sends becomes a `comm` frame the kernel publishes on iopub; the
client's comm_open/comm_msg/comm_close come as commands between cells, as ipykernel
handles them in its shell queue."""
from __future__ import annotations

import base64
import threading
from typing import Any

import comm
from comm.base_comm import BaseComm, CommManager

from .frames import Channel
from .shell import _flush_streams

_channel: Channel | None = None
_manager: CommManager | None = None
_lock = threading.Lock()


class FrameComm(BaseComm):
    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        if _channel is None:
            return
        _flush_streams()  # what the cell printed before goes out before
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        frame = {"type": "comm", "msg_type": msg_type, "content": content,
                 "metadata": {} if metadata is None else metadata}
        if buffers:  # binary (widgets' images, arrays): base64 in the JSON frame, the
            # kernel sends them as the message's buffers, after its content
            frame["buffers"] = [base64.b64encode(b).decode("ascii") for b in buffers]
        _channel.send(frame)


def _create_comm(*args: Any, **kwargs: Any) -> BaseComm:
    return FrameComm(*args, **kwargs)


def _get_comm_manager(*args: Any, **kwargs: Any) -> CommManager:
    global _manager
    with _lock:
        if _manager is None:
            _manager = CommManager(*args, **kwargs)
        return _manager


def install(channel: Channel) -> CommManager:
    global _channel
    _channel = channel
    comm.create_comm = _create_comm
    comm.get_comm_manager = _get_comm_manager
    return _get_comm_manager()


def handle(kind: str, content: dict) -> dict | None:
    """A client's comm message (no reply) or comm_info (its reply content)."""
    manager = _get_comm_manager()
    if kind == "comm_info":
        target = content.get("target_name")
        comms = {cid: {"target_name": c.target_name} for cid, c in manager.comms.items()
                 if target is None or c.target_name == target}
        return {"comms": comms, "status": "ok"}
    buffers = [memoryview(base64.b64decode(b)) for b in content.pop("buffers", None) or []]
    metadata = content.pop("metadata", None)
    msg = {"content": content, "metadata": metadata if isinstance(metadata, dict) else {},
           "buffers": buffers, "header": {}, "parent_header": {}}
    getattr(manager, kind)(None, None, msg)
    return None
