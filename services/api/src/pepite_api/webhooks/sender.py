"""One POST of a delivery: check the target again, connect to a checked address, sign."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Self

import httpx

from pepite_api.settings import Settings
from pepite_api.webhooks.crypto import signature_header
from pepite_api.webhooks.service import AttemptResult, judge_response, short_error
from pepite_api.webhooks.targets import (
    AllowedTargets,
    IPAddress,
    TargetRefusedError,
    checked_addresses,
)

USER_AGENT = "Pepite-Webhooks/1"


class WebhookSender:
    """POSTs deliveries; open it with ``async with`` (it owns an HTTP client)."""

    def __init__(self, settings: Settings) -> None:
        self._allowed = AllowedTargets.parse(settings.webhook_allowed_targets)
        self._timeout_s = settings.webhook_timeout_seconds
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            timeout=self._timeout_s,
            # A redirect could lead from a checked public URL to a private one.
            follow_redirects=False,
            # A proxy from the environment would connect on its own terms, unchecked.
            trust_env=False,
            # A kept-alive connection is keyed by address: reusing one opened for another
            # host on the same address would carry that host's TLS session.
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(
        self,
        url: str,
        body: bytes,
        *,
        event_type: str,
        delivery_id: str,
        secrets_in_use: list[str],
    ) -> AttemptResult:
        """POST ``body`` to ``url``; never raises for what the receiver or network does.

        The whole attempt, address check included, is bounded by
        ``webhook_timeout_seconds``. Of the checked addresses, each is tried in turn
        until one accepts the connection.
        """
        assert self._client is not None, "use the sender inside 'async with'"
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                target = httpx.URL(url)
                addresses = await checked_addresses(
                    target, self._allowed, timeout_s=self._timeout_s
                )
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "Pepite-Event": event_type,
                    "Pepite-Delivery": delivery_id,
                    "Pepite-Signature": signature_header(secrets_in_use, int(time.time()), body),
                }
                status_code = await self._post(target, addresses, body, headers)
                error = judge_response(status_code)
        except TargetRefusedError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {self._timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = _describe(exc)
        return AttemptResult(
            status_code=status_code,
            error=None if error is None else short_error(error),
            duration_s=time.perf_counter() - started,
        )

    async def _post(
        self,
        target: httpx.URL,
        addresses: list[IPAddress],
        body: bytes,
        headers: dict[str, str],
    ) -> int:
        assert self._client is not None
        host = target.raw_host.decode("ascii")
        # The connection goes to a checked address; the receiver still sees its own host
        # name in Host and, over TLS, in SNI, against which its certificate is verified.
        headers = {**headers, "Host": target.netloc.decode("ascii")}
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        last_error: httpx.ConnectError | None = None
        for address in addresses:
            request = self._client.build_request(
                "POST",
                target.copy_with(host=str(address)),
                content=body,
                headers=headers,
                extensions=extensions,
            )
            try:
                # Streamed and closed unread: a receiver's body is not needed, and a
                # huge one must not be loaded into memory.
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            await response.aclose()
            return response.status_code
        assert last_error is not None
        raise last_error


_FAILURE_KINDS: dict[type[httpx.HTTPError], str] = {
    httpx.ConnectError: "could not connect",
    httpx.ConnectTimeout: "connection timed out",
    httpx.ReadTimeout: "no answer in time",
    httpx.WriteTimeout: "sending timed out",
    httpx.RemoteProtocolError: "invalid HTTP answer",
}


def _describe(exc: httpx.HTTPError) -> str:
    kind = _FAILURE_KINDS.get(type(exc), "HTTP error")
    detail = str(exc) or type(exc).__name__
    return f"{kind}: {detail}"
