"""The OpenAI chat-completions API over HTTP, as Ollama, llama-server, LM Studio, vLLM (and
EasySteer on vLLM) serve it: the model list, and a chat completion streamed as server-sent
events. Standard library only (``http.client``), so a server chat loads nothing heavy.

Every fault is an :class:`EmochatError` of one line that never holds the API key: the server
unreachable, a key refused (401/403), a model or path not found (404), rate limits (429: one
retry when the server asks for a short wait), a body that is not the API's, a server slower
than the timeout. A stream that breaks after the reply has begun is not an error: the reply
ends there and says why."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emochat.errors import EmochatError

# A server asking for a longer wait than this after a 429 is not waited for: it is said.
MAX_RETRY_WAIT_SECONDS = 10.0


def shown_url(base_url: str) -> str:
    """``base_url`` without credentials, as it may be shown and stored."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


@dataclass
class StreamEnd:
    """How a streamed completion ended."""

    finish_reason: str | None = None  # "stop", "length", … as the server says
    broken: str | None = None  # why the stream ended early, after some of the reply came


class ServerAPI:
    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EmochatError(
                f"the server URL must be http(s)://HOST[:PORT]/PATH, not {base_url!r}"
            )
        self.base_url = shown_url(base_url)
        self._parts = parts
        self._api_key = api_key
        self._timeout = timeout

    # ------------------------------------------------------------ plumbing
    def _connect(self) -> http.client.HTTPConnection:
        kind = (
            http.client.HTTPSConnection
            if self._parts.scheme == "https"
            else http.client.HTTPConnection
        )
        return kind(self._parts.hostname or "", self._parts.port, timeout=self._timeout)

    def _headers(self, streaming: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if streaming:
            headers["Accept"] = "text/event-stream"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _path(self, endpoint: str) -> str:
        return f"{self._parts.path.rstrip('/')}/{endpoint}"

    def _send(self, method: str, endpoint: str, body: dict[str, Any] | None) -> tuple[Any, Any]:
        """The connection and its response, a 2xx one (a short 429 wait retried once)."""
        for attempt in (1, 2):
            connection = self._connect()
            try:
                data = json.dumps(body).encode() if body is not None else None
                connection.request(
                    method, self._path(endpoint), data, self._headers(body is not None)
                )
                response = connection.getresponse()
            except TimeoutError:
                connection.close()
                raise EmochatError(self._too_slow()) from None
            except OSError as error:
                connection.close()
                raise EmochatError(
                    f"cannot reach the server at {self.base_url}: {error.strerror or error}"
                ) from None
            if response.status == 429 and attempt == 1:
                wait = _retry_after(response.getheader("Retry-After"))
                if wait is not None and wait <= MAX_RETRY_WAIT_SECONDS:
                    connection.close()
                    time.sleep(wait)
                    continue
            if response.status >= 400:
                text = _read_text(response)
                connection.close()
                raise EmochatError(self._fault(response.status, response, text, body))
            return connection, response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _too_slow(self) -> str:
        return f"the server at {self.base_url} did not answer within {self._timeout:g} s"

    def _fault(self, status: int, response: Any, text: str, body: dict[str, Any] | None) -> str:
        detail = _server_message(text)
        where = f"the server at {self.base_url}"
        if status in (401, 403):
            return (
                f"{where} refused the API key ({status}{': ' + detail if detail else ''}); set "
                "EMOCHAT_API_KEY, or the variable the server profile's api_key_env names"
            )
        if status == 404:
            model = (body or {}).get("model")
            what = f"the model {model!r}" if model else "that path"
            said = f": {detail}" if detail else ""
            return (
                f"{where} has no {what} (404{said}); `emochat models --base-url` lists its models"
            )
        if status == 429:
            wait = response.getheader("Retry-After")
            later = f"; it asks to wait {wait} s" if wait else ""
            return f"{where} is rate-limiting requests (429){later}"
        if not _is_json(text):
            page = "a page, not the chat-completions API (is the URL its /v1?)"
            return f"{where} answered {status} with {page}"
        return f"{where} answered {status}{': ' + detail if detail else ''}"

    # -------------------------------------------------------------- the API
    def models(self) -> list[dict[str, Any]]:
        """``GET /models``: what the server offers, as it describes each model."""
        connection, response = self._send("GET", "models", None)
        try:
            text = _read_text(response)
        finally:
            connection.close()
        try:
            data = json.loads(text)["data"]
            if not isinstance(data, list) or not all(
                isinstance(m, dict) and "id" in m for m in data
            ):
                raise ValueError("data is not a list of models")
        except (ValueError, KeyError, TypeError) as error:
            raise EmochatError(
                f"{self.base_url}/models is not the API's model list ({error})"
            ) from None
        return data

    def stream_chat(
        self,
        body: dict[str, Any],
        on_piece: Callable[[str], None],
        cancel: threading.Event,
    ) -> StreamEnd:
        """``POST /chat/completions`` with ``stream``: each piece of the reply to ``on_piece``
        as it comes; stops reading (and closes the stream) once ``cancel`` is set."""
        connection, response = self._send("POST", "chat/completions", {**body, "stream": True})
        end = StreamEnd()
        received = False
        try:
            while not cancel.is_set():
                try:
                    line = response.readline()
                except TimeoutError:
                    if not received:
                        raise EmochatError(self._too_slow()) from None
                    end.broken = f"the server went quiet for {self._timeout:g} s"
                    break
                except (OSError, http.client.HTTPException) as error:
                    if not received:
                        raise EmochatError(
                            f"the server at {self.base_url} broke off: {error}"
                        ) from None
                    end.broken = "the server closed the stream mid-reply"
                    break
                if not line:
                    if end.finish_reason is None:
                        if not received:
                            raise EmochatError(
                                f"the server at {self.base_url} closed the stream without a reply"
                            )
                        end.broken = "the server closed the stream mid-reply"
                    break
                text = line.decode("utf-8", errors="replace").strip()
                if not text.startswith("data:"):
                    continue  # comments, event names, keep-alives
                payload = text[5:].strip()
                if payload == "[DONE]":
                    break
                piece = self._chunk(payload, end)
                if piece:
                    received = True
                    on_piece(piece)
        finally:
            connection.close()
        return end

    def _chunk(self, payload: str, end: StreamEnd) -> str:
        """The text in one streamed chunk (noting its finish reason and usage)."""
        try:
            chunk = json.loads(payload)
            if "error" in chunk:
                raise EmochatError(
                    f"the server at {self.base_url} failed: {_server_message(payload)}"
                )
            choices = chunk["choices"]
            if not choices:
                return ""  # a usage chunk, from a server that sends one unasked
            choice = choices[0]
            if choice.get("finish_reason"):
                end.finish_reason = str(choice["finish_reason"])
            content = (choice.get("delta") or {}).get("content")
            return content if isinstance(content, str) else ""
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise EmochatError(
                f"the server at {self.base_url} streamed something that is not the "
                f"chat-completions API ({type(error).__name__}: {str(error)[:80]})"
            ) from None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: a long wait, said rather than waited for


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _read_text(response: Any) -> str:
    try:
        return response.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return ""


def _server_message(text: str) -> str:
    """The server's own words from an error body (``{"error": {"message": …}}`` and its
    variants), else the first line of the body, short."""
    try:
        data = json.loads(text)
        error = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
        if isinstance(error, dict):
            error = error.get("message", error)
        message = str(error)
    except ValueError:
        message = text.strip().splitlines()[0] if text.strip() else ""
    return message[:160]
