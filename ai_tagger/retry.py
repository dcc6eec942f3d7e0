"""The one HTTP retry policy, shared by the gateway providers and the Stash client.

A urllib3 :class:`~urllib3.util.retry.Retry` mounted on each ``requests`` session, so retries
happen inside the transport and every caller gets one outcome: a response (the last one, when
every attempt failed with a retryable status) or a transport error. It adds to urllib3's policy:

* the wait a server asks for is read from ``Retry-After`` and from LiteLLM's
  ``llm_provider-retry-after`` (LiteLLM forwards an upstream's header only under that name),
  as seconds (``1.5``) or an HTTP date, on any retried status;
* without one, exponential backoff with jitter: ``backoff * 2**(n-1) * (0.5..1.5)``;
* every wait is capped at ``max_wait``, whatever the server asks;
* with a ``label``, each retry is logged (``logging``, forwarded to Stash's log by
  :meth:`ai_tagger.log.Log.forward`): behind a gateway that spreads one model over several
  servers, a failing or rate-limited server shows up nowhere else.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

RETRY_AFTER_HEADERS = ("retry-after", "llm_provider-retry-after", "x-ratelimit-reset-requests")
MAX_WAIT = 60.0
_log = logging.getLogger(__name__)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait, if it said so (uncapped)."""
    if headers is None:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name in RETRY_AFTER_HEADERS:
        raw = lowered.get(name)
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


class RetryPolicy(Retry):
    """urllib3's Retry that reads LiteLLM's header, caps every wait, and sleeps through ``sleep``."""

    def __init__(self, *args: Any, max_wait: float = MAX_WAIT, sleep: Callable[[float], None] = time.sleep,
                 label: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("backoff_max", max_wait)
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.sleep_function = sleep
        self.label = label

    @classmethod
    def create(
        cls,
        *,
        retries: int,
        statuses: Collection[int],
        backoff: float,
        raise_on_status: bool = True,
        max_wait: float = MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        label: str | None = None,
    ) -> RetryPolicy:
        """Retry connection errors, timeouts and ``statuses``, for every method (POST too)."""
        return cls(
            total=retries,
            status_forcelist=frozenset(statuses),
            allowed_methods=None,
            backoff_factor=backoff,
            raise_on_status=raise_on_status,
            max_wait=max_wait,
            sleep=sleep,
            label=label,
        )

    def new(self, **kw: Any) -> RetryPolicy:
        fresh = super().new(**kw)
        fresh.max_wait = self.max_wait
        fresh.sleep_function = self.sleep_function
        fresh.label = self.label
        return fresh

    def get_retry_after(self, response: Any) -> float | None:
        asked = retry_after(getattr(response, "headers", None))
        return None if asked is None else min(asked, self.max_wait)

    def get_backoff_time(self) -> float:
        failed = len(self.history)
        if failed == 0 or self.backoff_factor <= 0:
            return 0.0
        return min(self.backoff_factor * (2 ** (failed - 1)) * (0.5 + random.random()), self.max_wait)

    def sleep(self, response: Any = None) -> None:
        asked = self.get_retry_after(response) if response is not None else None
        wait = self.get_backoff_time() if asked is None else asked
        if self.label and self.history:
            done = len(self.history)
            left = self.total if isinstance(self.total, int) else 0
            how = " as it asked" if asked is not None else ""
            _log.warning("%s: %s; retry %d of %d in %.3g s%s", self.label, _failed(self.history[-1]), done,
                         done + left, wait, how)
        if wait > 0:
            self.sleep_function(wait)


def _failed(attempt: Any) -> str:
    """What went wrong with one attempt (a urllib3 ``RequestHistory``), in words."""
    if attempt.status:
        return f"HTTP {attempt.status}"
    if isinstance(attempt.error, ReadTimeoutError):
        return "no answer in time"
    if isinstance(attempt.error, (NewConnectionError, ConnectTimeoutError)):
        return "cannot connect"
    return f"connection lost ({type(attempt.error).__name__})"


class PooledSessions:
    """One ``requests.Session`` per thread (a Session is not thread-safe), each with the policy mounted."""

    def __init__(
        self,
        policy: Callable[[], Retry],
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        pool_size: int = 16,
    ) -> None:
        self._policy = policy
        self._headers = dict(headers or {})
        self._cookies = dict(cookies or {})
        self._pool_size = pool_size
        self._local = threading.local()

    def get(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=self._policy(), pool_maxsize=self._pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(self._headers)
            session.cookies.update(self._cookies)
            self._local.session = session
        return session
