"""HTTP to the gateway: timeouts on every call, retries with backoff that honour Retry-After.

Retried: connection errors, timeouts, 408, 409, 429 and 5xx. Not retried: other 4xx, which
only a change of settings can fix. The wait before a retry is the server's ``Retry-After``
(or LiteLLM's ``llm_provider-retry-after``) when given, else exponential backoff with jitter.
Each retry is logged (``logging``, forwarded to Stash's log by :meth:`ai_tagger.log.Log.forward`):
behind a gateway that spreads one model over several servers, a failing or rate-limited server
shows up nowhere else.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ai_tagger.gateway.base import GatewayError, GatewayFatal
from ai_tagger.settings import Settings

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0
_log = logging.getLogger(__name__)


class HttpFailure(Exception):
    """The last attempt's outcome: an HTTP status with body, or a transport error."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait, if it said so."""
    for name in ("retry-after", "llm_provider-retry-after", "x-ratelimit-reset-requests"):
        raw = headers.get(name) if headers is not None else None
        if not raw:
            continue
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            continue
    return None


class RetryingSession:
    """One connection pool per thread, shared policy for every gateway call."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        timeout: float,
        retries: int = 4,
        backoff: float = 0.5,
        sleep: Any = time.sleep,
    ) -> None:
        self._headers = headers
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._local = threading.local()

    @classmethod
    def for_gateway(cls, settings: Settings) -> RetryingSession:
        """The session every provider uses: JSON, the configured key and auth scheme, the timeout."""
        settings.require_gateway()
        headers = {"Content-Type": "application/json"}
        if settings.api_key:
            headers["Authorization"] = settings.authorization(settings.api_key.get_secret_value())
        return cls(headers=headers, timeout=settings.request_timeout)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_maxsize=64))
            session.mount("https://", HTTPAdapter(pool_maxsize=64))
            session.headers.update(self._headers)
            self._local.session = session
        return session

    def _wait(self, attempt: int, attempts: int, response: requests.Response | None, failure: HttpFailure) -> None:
        asked = retry_after(response.headers) if response is not None else None
        wait = self.backoff * (2**attempt) * (0.5 + random.random()) if asked is None else asked
        wait = min(wait, MAX_WAIT)
        detail = (_server_message(failure).splitlines() or [""])[0][:200]
        _log.warning(
            "gateway: %s%s; retry %d of %d in %.3g s%s",
            failure, f" ({detail})" if detail else "", attempt + 1, attempts - 1, wait,
            " as it asked" if asked is not None else "",
        )
        self._sleep(wait)

    def request(
        self, method: str, url: str, *, json: Any = None, timeout: float | None = None, retries: int | None = None
    ) -> requests.Response:
        """The first successful response; :class:`HttpFailure` after the last failed attempt."""
        failure: HttpFailure | None = None
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            response = None
            try:
                response = self._session().request(method, url, json=json, timeout=(10, timeout or self.timeout))
            except requests.Timeout:
                failure = HttpFailure(f"no answer within {timeout or self.timeout:g} s")
            except requests.ConnectionError:
                failure = HttpFailure(f"cannot connect to {url.split('/v1')[0]}")
            else:
                if response.ok:
                    return response
                failure = HttpFailure(
                    f"HTTP {response.status_code}", status=response.status_code, body=response.text[:2000]
                )
                if response.status_code not in RETRY_STATUSES:
                    raise failure
            if attempt + 1 < attempts:
                self._wait(attempt, attempts, response, failure)
        assert failure is not None
        raise failure


def _server_message(failure: HttpFailure) -> str:
    """The server's own error text, when it sent one."""
    try:
        error = json.loads(failure.body).get("error")
    except (ValueError, AttributeError):
        return failure.body[:200]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or "")[:300]


def failure_error(failure: HttpFailure, base_url: str, model: str) -> GatewayError:
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
