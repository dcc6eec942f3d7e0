"""HTTP to the gateway: timeouts on every call, retries with backoff that honour Retry-After.

Retried: connection errors, timeouts, 408, 409, 429 and 5xx. Not retried: other 4xx, which
only a change of settings can fix. The wait before a retry is the server's ``Retry-After``
(or LiteLLM's ``llm_provider-retry-after``) when given, else exponential backoff with jitter.
"""

from __future__ import annotations

import random
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0


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

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_maxsize=64))
            session.mount("https://", HTTPAdapter(pool_maxsize=64))
            session.headers.update(self._headers)
            self._local.session = session
        return session

    def _wait(self, attempt: int, response: requests.Response | None) -> None:
        asked = retry_after(response.headers) if response is not None else None
        if asked is None:
            asked = self.backoff * (2**attempt) * (0.5 + random.random())
        self._sleep(min(asked, MAX_WAIT))

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
                self._wait(attempt, response)
        assert failure is not None
        raise failure
