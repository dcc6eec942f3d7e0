"""HTTP to the gateway: timeouts on every call, retries by the shared policy (:mod:`ai_tagger.retry`).

Retried: connection errors, timeouts, 408, 409, 429 and 5xx. Not retried: other 4xx, which
only a change of settings can fix. The wait before a retry is the server's ``Retry-After``
(or LiteLLM's ``llm_provider-retry-after``) when given, else exponential backoff with jitter,
capped either way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from ai_tagger.analyze.gateway.base import GatewayConfig
from ai_tagger.errors import GatewayError, GatewayFatal
from ai_tagger.retry import PooledSessions, RetryPolicy

if TYPE_CHECKING:
    from ai_tagger.settings import Settings

__all__ = ["RETRY_STATUSES", "HttpFailure", "RetryingSession", "check_models", "failure_error"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class HttpFailure(Exception):
    """The last attempt's outcome: an HTTP status with body, or a transport error."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _timed_out(exc: requests.ConnectionError) -> bool:
    """A read timeout on the last attempt reaches requests as a ConnectionError around MaxRetryError."""
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, ReadTimeoutError)


class RetryingSession:
    """Pooled sessions (one per thread) with the shared retry policy, for every gateway call."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        timeout: float,
        retries: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._headers = headers
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._guard = threading.Lock()
        self._pools: dict[int, PooledSessions] = {}

    @classmethod
    def for_gateway(cls, config: GatewayConfig | Settings) -> RetryingSession:
        """The session every provider uses: JSON, the configured key and auth scheme, the timeout."""
        config = GatewayConfig.of(config)
        config.require()
        return cls(headers={"Content-Type": "application/json", **config.auth_headers()}, timeout=config.timeout)

    def _policy(self, retries: int) -> RetryPolicy:
        return RetryPolicy.create(
            retries=retries,
            statuses=RETRY_STATUSES,
            backoff=self.backoff,
            raise_on_status=False,
            sleep=lambda seconds: self._sleep(seconds),
            label="gateway",
        )

    def _session(self, retries: int) -> requests.Session:
        with self._guard:
            pool = self._pools.get(retries)
            if pool is None:
                pool = PooledSessions(lambda: self._policy(retries), headers=self._headers, pool_size=64)
                self._pools[retries] = pool
        return pool.get()

    def request(
        self, method: str, url: str, *, json: Any = None, timeout: float | None = None, retries: int | None = None
    ) -> requests.Response:
        """The first successful response; :class:`HttpFailure` after the last failed attempt."""
        read_timeout = timeout or self.timeout
        session = self._session(self.retries if retries is None else retries)
        try:
            response = session.request(method, url, json=json, timeout=(10, read_timeout))
        except requests.Timeout:
            raise HttpFailure(f"no answer within {read_timeout:g} s") from None
        except requests.ConnectionError as exc:
            if _timed_out(exc):
                raise HttpFailure(f"no answer within {read_timeout:g} s") from None
            raise HttpFailure(f"cannot connect to {url.split('/v1')[0]}") from None
        if response.ok:
            return response
        raise HttpFailure(f"HTTP {response.status_code}", status=response.status_code, body=response.text[:2000])


def _server_message(failure: HttpFailure) -> str:
    """The server's own error text, when it sent one."""
    try:
        error = json.loads(failure.body).get("error")
    except (ValueError, AttributeError):
        return failure.body[:200]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or "")[:300]


def failure_error(failure: HttpFailure, base_url: str, model: str) -> GatewayError | GatewayFatal:
    """A per-item error, or a run-ending one that says which setting to fix."""
    detail = _server_message(failure)
    if failure.status in (401, 403) or (failure.status == 400 and "no_db_connection" in failure.body):
        # LiteLLM's proxy without a database answers any key but its master key with 400 no_db_connection.
        return GatewayFatal(
            f"the gateway at {base_url} refused the API key (HTTP {failure.status}: {detail}). "
            "Fix 'apiKey' (or 'authScheme') in settings."
        )
    if failure.status == 404:
        return GatewayFatal(
            f"the gateway at {base_url} answered 404 ({detail}): check that 'gatewayUrl' ends in /v1 "
            f"and that model {model!r} exists."
        )
    if failure.status is None:
        return GatewayFatal(f"the gateway is unreachable: {failure}. Check 'gatewayUrl' ({base_url}).")
    return GatewayError(f"gateway answered {failure}: {detail}")


def check_models(http: RetryingSession, base_url: str, model: str) -> None:
    """Preflight: ``GET {base}/models`` proves the URL and key, and the model when the list is given."""
    try:
        response = http.request("GET", f"{base_url}/models", timeout=30, retries=1)
    except HttpFailure as failure:
        if failure.status == 404:
            return
        error = failure_error(failure, base_url, model)
        if not isinstance(error, GatewayFatal):
            error = GatewayFatal(f"preflight failed: {error}. Check 'gatewayUrl', 'apiKey' and 'model'.")
        raise error from None
    try:
        served = [str(m.get("id")) for m in response.json().get("data", [])]
    except (ValueError, AttributeError):
        return
    if served and model not in served:
        raise GatewayFatal(
            f"model {model!r} is not served by {base_url}; it serves: {', '.join(served[:10])}. "
            "Fix 'model' in settings."
        )
