"""A real LiteLLM proxy in front of the test model, for end-to-end gateway tests.

LiteLLM is the gateway most users put in front of their models, and it is not a dumb pipe:
it checks keys its own way, maps upstream errors, renames headers and rewrites answers. These
helpers run the real proxy (installed by ``.ci/litellm-venv`` in a virtualenv of its own) once
per test session, in front of a session-wide :class:`FakeModel`, so the plugin is tested
against what LiteLLM actually does.

The proxy runs offline (``LITELLM_LOCAL_MODEL_COST_MAP``: no price-list download), without a
database (so the master key is the only key it accepts), and with ``num_retries: 0`` so that
upstream 429/5xx reach the plugin and its own retry logic is what gets exercised.

Fixtures (import them into a test module): ``litellm_upstream`` (session FakeModel),
``litellm_proxy`` (session proxy) and ``upstream`` (the FakeModel, reset around each test).

A proxy can also front several upstreams as LiteLLM's router does in production: one
``model_name`` served by N deployments (``LiteLLMProxy([a, b, ...])``), further model groups
(``extra_deployments``, built with :func:`deployment`) and router settings of the test's
choosing (``router_settings``, merged over the no-retry defaults).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

REPO = Path(__file__).resolve().parents[1]
VENV_SCRIPT = REPO / ".ci" / "litellm-venv"
MODEL_NAME = "vision-test"
INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 90.0
UPSTREAM_RETRY_AFTER = 0.05  # seconds the upstream's 429/503 ask for, unless a test changes it


class LiteLLMUnavailable(RuntimeError):
    """The proxy could not be installed (no network, no venv): tests skip, or fail in CI."""


def ensure_venv() -> Path:
    """The LiteLLM venv, installed by ``.ci/litellm-venv`` if missing (fast no-op if present)."""
    try:
        done = subprocess.run(
            ["bash", str(VENV_SCRIPT)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise LiteLLMUnavailable(f"{VENV_SCRIPT} took over {INSTALL_TIMEOUT:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise LiteLLMUnavailable(f"{VENV_SCRIPT} failed (exit {done.returncode}):\n{tail}")
    venv = Path(lines[-1])
    if not (venv / "bin" / "litellm").exists():
        raise LiteLLMUnavailable(f"{VENV_SCRIPT} printed {venv}, which has no bin/litellm")
    return venv


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def deployment(upstream: FakeModel, model_name: str = MODEL_NAME, **params: Any) -> dict[str, Any]:
    """One ``model_list`` entry: ``model_name`` served by ``upstream`` (``params``: rpm, tpm, ...)."""
    return {
        "model_name": model_name,
        "litellm_params": {
            "model": f"openai/{MODEL_NAME}",
            "api_base": upstream.base_url,
            "api_key": upstream.api_key,
            **params,
        },
    }


class LiteLLMProxy:
    """``litellm --config ...`` on 127.0.0.1 with one model, ``vision-test``, served by ``upstream``
    (or by each of several upstreams, one router deployment each)."""

    def __init__(self, upstream: FakeModel | Sequence[FakeModel], *, venv: Path, workdir: Path,
                 master_key: str | None = None, host: str = "127.0.0.1", port: int | None = None,
                 extra_deployments: Sequence[dict[str, Any]] = (), router_settings: dict[str, Any] | None = None,
                 ) -> None:
        self.upstreams = [upstream] if isinstance(upstream, FakeModel) else list(upstream)
        self.upstream = self.upstreams[0]
        self.extra_deployments = list(extra_deployments)
        self.router_settings = dict(router_settings or {})
        self.venv = venv
        self.workdir = workdir
        self.master_key = master_key or "sk-litellm-master-" + secrets.token_hex(8)
        self.host = host
        self.port = port or free_port(host)
        self.config_path = workdir / "litellm_config.yaml"
        self.log_path = workdir / "litellm.log"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the plugin's ``gatewayUrl`` is set to."""
        return f"{self.root_url}/v1"

    def config(self) -> dict[str, Any]:
        return {
            "model_list": [deployment(u) for u in self.upstreams] + self.extra_deployments,
            # By default no retries, fallbacks or cool-downs in LiteLLM: upstream failures reach the plugin.
            "litellm_settings": {"num_retries": 0, "request_timeout": 120, "telemetry": False},
            "router_settings": {"num_retries": 0, "disable_cooldowns": True, **self.router_settings},
            # No database_url: LiteLLM then accepts the master key and nothing else.
            "general_settings": {"master_key": self.master_key},
        }

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "OPENAI_"))}
        env.pop("DATABASE_URL", None)
        env.update(
            LITELLM_LOCAL_MODEL_COST_MAP="True",  # else it downloads a price list at start-up
            LITELLM_MODE="PRODUCTION",  # don't load a stray .env
            LITELLM_LOG="ERROR",
            LITELLM_DONT_SHOW_FEEDBACK_BOX="true",
            DISABLE_ADMIN_UI="True",
            NO_DOCS="True",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, timeout: float = START_TIMEOUT) -> LiteLLMProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self._log_file = self.log_path.open("wb")
        started = time.monotonic()
        self._process = subprocess.Popen(
            [str(self.venv / "bin" / "litellm"), "--config", str(self.config_path),
             "--host", self.host, "--port", str(self.port)],
            cwd=self.workdir, env=self.environment(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_alive(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_alive(self, deadline: float) -> None:
        assert self._process is not None
        url = f"{self.root_url}/health/liveliness"
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(f"LiteLLM exited with code {code} while starting:\n{self.log_tail()}")
            try:
                response = requests.get(url, timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise RuntimeError(f"LiteLLM not alive at {url} after {START_TIMEOUT:g} s ({last}):\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the proxy process has used so far, from ``/proc``."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proxy_settings(proxy: LiteLLMProxy, **extra: Any) -> dict[str, Any]:
    """Plugin settings that send everything through the proxy with its master key."""
    return {"gatewayUrl": proxy.base_url, "apiKey": proxy.master_key, "model": MODEL_NAME, **extra}


def configure_proxy(stash: FakeStash, proxy: LiteLLMProxy, **settings: Any) -> None:
    stash.set_plugin_settings("ai_tagger", proxy_settings(proxy, **settings))


def reset_upstream(model: FakeModel) -> None:
    """Forget recordings and put every misbehaviour knob back to its default."""
    model.reset()
    model.fail_next = []
    model.retry_after = UPSTREAM_RETRY_AFTER
    model.latency = 0.0
    model.honour_response_format = True
    model.answer_style = "json"
    model.malformed_colour = None
    model.empty_colour = None


def venv_or_skip() -> Path:
    """The LiteLLM venv, for a fixture. Without a way to install it (no network) the test skips,
    except in CI (``CI`` set), where a skipped gateway suite would hide a broken install: it fails."""
    try:
        return ensure_venv()
    except LiteLLMUnavailable as exc:
        reason = f"LiteLLM proxy unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def litellm_upstream() -> Iterator[FakeModel]:
    """The model behind the proxy: one for the session, as the proxy's config points at it."""
    with FakeModel(models=[MODEL_NAME], retry_after=UPSTREAM_RETRY_AFTER) as server:
        yield server


@pytest.fixture(scope="session")
def litellm_proxy(litellm_upstream: FakeModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    """The real LiteLLM proxy, installed if needed and started once per session."""
    with LiteLLMProxy(litellm_upstream, venv=venv_or_skip(), workdir=tmp_path_factory.mktemp("litellm")) as proxy:
        yield proxy


@pytest.fixture
def upstream(litellm_upstream: FakeModel, litellm_proxy: LiteLLMProxy) -> Iterator[FakeModel]:
    """The session's upstream model, fresh for this test."""
    reset_upstream(litellm_upstream)
    yield litellm_upstream
    reset_upstream(litellm_upstream)
