"""A fake OpenAI-compatible provider on 127.0.0.1 (stdlib http.server in a thread) with canned answers.

Used by the live LLM bridge tests and by bench/llm_proxy.py:

    with FakeOpenAI(models=["fake-model"]) as provider:
        provider.base_url                      # http://127.0.0.1:<port>/v1
        provider.stream_chunks, provider.chunk_interval = 5, 0.2   # shape of the next streams
        provider.requests[-1].body             # what the last call sent

`POST /v1/chat/completions` answers JSON, or Server-Sent Events when the body has `"stream": true`
(`stream_chunks` deltas `chunk_interval` seconds apart, a usage event when `stream_options.include_usage`,
then `[DONE]`), or `error_status` with an OpenAI-style error body when that is set.

`POST /v1/responses` (the Responses API) answers the same way in that API's shapes: a `response` object,
or the events `response.created`, `stream_chunks` × `response.output_text.delta` and `response.completed`
(with usage) `chunk_interval` seconds apart. With `responses_api = False` it is a 404, as from a provider
that only has chat completions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
ERROR_BODY = {"error": {"message": "fake provider error", "type": "fake_error", "code": None}}
RESPONSE_USAGE = {"input_tokens": 13, "output_tokens": 5, "total_tokens": 18}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StreamRecord:
    """One streamed answer as the provider saw it: when each chunk was written, and whether the peer left."""

    chunk_times: list[float] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


class FakeOpenAI:
    def __init__(self, *, models: list[str] | None = None) -> None:
        self.models = models or ["fake-model"]
        self.stream_chunks = 3
        self.chunk_interval = 0.0
        self.error_status: int | None = None
        self.responses_api = True
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Default answers again, and no recorded requests."""
        self.stream_chunks = 3
        self.chunk_interval = 0.0
        self.error_status = None
        self.responses_api = True
        self.requests.clear()
        self.streams.clear()

    def answer(self, body: Any) -> tuple[int, Any]:
        """(status, JSON body) of a non-streamed chat completion: the error when one is set, else `pong`."""
        if self.error_status is not None:
            return self.error_status, ERROR_BODY
        return 200, self.completion(body)

    def responses_answer(self, body: Any) -> tuple[int, Any]:
        """(status, JSON body) of a non-streamed Responses call: the error when one is set, else `pong`."""
        if self.error_status is not None:
            return self.error_status, ERROR_BODY
        return 200, self.response(body)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", ""),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
            ],
            "usage": USAGE,
        }

    def response(self, body: dict[str, Any], text: str = "pong") -> dict[str, Any]:
        """A Responses API answer; the streamed one carries the streamed text."""
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": body.get("model", ""),
            "output": [
                {
                    "id": "msg_fake",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": RESPONSE_USAGE,
        }

    def response_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        deltas = [f"part {number} " for number in range(self.stream_chunks)]
        created = {**self.response(body), "status": "in_progress", "output": [], "usage": None}
        events: list[dict[str, Any]] = [{"type": "response.created", "response": created}]
        events += [
            {
                "type": "response.output_text.delta",
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "delta": text,
            }
            for text in deltas
        ]
        events.append({"type": "response.completed", "response": self.response(body, "".join(deltas))})
        return [{**event, "sequence_number": number} for number, event in enumerate(events)]

    def stream_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        events = [
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body.get("model", ""),
                "choices": [{"index": 0, "delta": {"content": f"part {number} "}, "finish_reason": None}],
            }
            for number in range(self.stream_chunks)
        ]
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            events.append(
                {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
            )
        return events


def _handler_for(provider: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small writes must leave at once; Nagle's algorithm would hold them for the peer's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the tests read `requests`, and a line per request would only clutter their output."""

        def do_GET(self) -> None:
            self._record(None)
            if self.path == "/v1/models":
                listing = {
                    "object": "list",
                    "data": [{"id": model, "object": "model"} for model in provider.models],
                }
                self._send_json(200, listing)
            else:
                self._send_json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            self._record(body)
            streamed = provider.error_status is None and isinstance(body, dict) and body.get("stream") is True
            if self.path == "/v1/chat/completions":
                if streamed:
                    frames = [f"data: {json.dumps(event)}\n\n" for event in provider.stream_events(body)]
                    self._send_stream([*frames, "data: [DONE]\n\n"])
                else:
                    self._send_json(*provider.answer(body))
            elif self.path == "/v1/responses" and provider.responses_api:
                if streamed:
                    frames = [
                        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                        for event in provider.response_events(body)
                    ]
                    self._send_stream(frames)
                else:
                    self._send_json(*provider.responses_answer(body))
            else:
                self._send_json(404, {"error": {"message": "not found"}})

        def _record(self, body: Any) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            provider.requests.append(RecordedRequest(self.command, self.path, headers, body))

        def _send_json(self, status: int, payload: Any) -> None:
            raw = json.dumps(payload).encode()
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + raw)

        def _send_stream(self, texts: list[str]) -> None:
            record = StreamRecord()
            provider.streams.append(record)
            frames = [text.encode() for text in texts]
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            try:
                self.wfile.write(head.encode())
                for index, frame in enumerate(frames):
                    if index and provider.chunk_interval:
                        time.sleep(provider.chunk_interval)
                    self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                    record.chunk_times.append(time.monotonic())
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                record.disconnected.set()
                self.close_connection = True
            finally:
                record.finished.set()

    return Handler
