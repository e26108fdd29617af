"""Sharing a file in a v2 direct conversation (PROTOCOL.md 15.18).

The chunks and the upload are section 12's, unchanged; only the message that shares the
key is a v2 one, so the file key has v2's forward secrecy. The uploader opens the direct
conversation first (``POST /conversations/direct``, idempotent): v2 messages do not make
one on the server, and an upload needs the uploader to be a member of it (12.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...protocol.files import FileDescriptor
from ..api import ApiClient
from ..files import Progress, upload_file

if TYPE_CHECKING:
    # Only for the annotation: the client imports the receiver, which imports this.
    from .client import V2Client


async def send_file_v2(
    v2: V2Client,
    api: ApiClient,
    peer: str,
    path: Path,
    *,
    caption: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Upload ``path`` for the conversation with ``peer`` and share it in a v2 message;
    the server's answer to the message, with the file's id and size."""
    conversation_id = (await api.open_direct(peer))["id"]
    descriptor = await upload_file(api, conversation_id, path, progress)
    sent, notices = await v2.send(peer, descriptor.to_payload(caption))
    return sent.answer | {
        "file_id": descriptor.file_id,
        "size": descriptor.size,
        "notices": [item.to_json() for item in notices],
    }


def shared_file(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """An accepted payload's ``file`` member in its checked form (key included), or None
    for a message that shares no file. The receiving core has already refused a payload
    whose descriptor breaks 12.3 (``bad_payload``), so this parses one that is valid."""
    if payload.get("type") != "file":
        return None
    shared: dict[str, Any] = FileDescriptor.from_payload(payload).to_payload()["file"]
    return shared
