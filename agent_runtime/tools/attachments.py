"""`send_file`: a workspace file posted into the current conversation as an attachment.

The path goes through the same confinement as the file tools (§5.1); the size limit is the server's
per-file limit (threads-attachments.md §2.1), checked here so a too-large file never starts an upload.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from agent_runtime.contracts import OutboundFile
from agent_runtime.tools.base import ToolContext
from agent_runtime.tools.files import confine

MAX_FILE_BYTES = 25 * 1024 * 1024


async def send_file(ctx: ToolContext, args: dict[str, Any]) -> str:
    path = args["path"]
    real = confine(ctx.settings, path)
    if os.path.isdir(real):
        return f"Error: path is a directory: {path}. send_file sends one file"
    try:
        size = os.stat(real).st_size
    except FileNotFoundError:
        return f"Error: file not found: {path}"
    if size > MAX_FILE_BYTES:
        return (
            f"Error: file is too large to send: {path} has {size} bytes, "
            f"attachments are limited to {MAX_FILE_BYTES} bytes (25 MiB)"
        )
    name = os.path.basename(real)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    file = OutboundFile(path=real, name=name, media_type=media_type, size=size)
    sent = await ctx.send(ctx.room_id, ctx.thread_root_id, args.get("caption", ""), file=file)
    if not sent.ok:
        return f"Error: send failed: {sent.error}"
    return f"File {name} ({size} bytes) sent to {ctx.room_id} (message {sent.message_id})"
