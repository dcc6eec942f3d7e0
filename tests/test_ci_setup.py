"""The set-up installs what each command needs: the browser only for the tests that drive it."""

from __future__ import annotations

import stat

from tests.browser import chromium
from tests.conftest import REPO


def test_setup_for_the_demo_installs_no_browser():
    setup = (REPO / ".ci" / "setup").read_text()
    commands = [line for line in setup.splitlines() if not line.lstrip().startswith("#")]

    assert not any("chromium" in line for line in commands)
    assert "apt-get install -y -qq chromium chromium-driver" in (REPO / ".ci" / "setup-browser").read_text()


def fake_script(path, body: str):
    path.write_text(f"#!/bin/bash\nset -e\nPATH=/usr/bin:/bin\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def without_browser(monkeypatch, path, script):
    """A machine with no Chromium on PATH whose set-up script is ``script``."""
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.delenv("AI_TAGGER_CHROMIUM", raising=False)
    monkeypatch.delenv("AI_TAGGER_CHROMEDRIVER", raising=False)
    monkeypatch.setattr(chromium, "SCRIPT", script)
    monkeypatch.setattr(chromium, "CHROMIUM", None)
    monkeypatch.setattr(chromium, "CHROMEDRIVER", None)
    chromium.missing.cache_clear()


def test_browser_tests_install_chromium_on_first_use(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = fake_script(
        tmp_path / "setup-browser",
        f'for b in chromium chromedriver; do printf "#!/bin/sh\\n" > {bin_dir}/$b; chmod +x {bin_dir}/$b; done',
    )
    without_browser(monkeypatch, bin_dir, script)
    try:
        assert chromium.missing() is None
    finally:
        chromium.missing.cache_clear()

    assert (chromium.CHROMIUM, chromium.CHROMEDRIVER) == (str(bin_dir / "chromium"), str(bin_dir / "chromedriver"))


def test_a_failed_browser_install_gives_the_reason_to_skip_with(tmp_path, monkeypatch):
    script = fake_script(tmp_path / "setup-browser", 'echo "sudo: a password is required" >&2; exit 1')
    without_browser(monkeypatch, tmp_path / "empty", script)
    try:
        reason = chromium.missing()
    finally:
        chromium.missing.cache_clear()

    assert isinstance(reason, str)
    assert "setup-browser failed (exit 1)" in reason and "a password is required" in reason
