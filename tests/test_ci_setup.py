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


def test_browser_test_installs_chromium_on_first_use(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = fake_script(
        tmp_path / "setup-browser",
        f'for b in chromium chromedriver; do printf "#!/bin/sh\\n" > {bin_dir}/$b; chmod +x {bin_dir}/$b; done',
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("AI_TAGGER_CHROMIUM", raising=False)
    monkeypatch.delenv("AI_TAGGER_CHROMEDRIVER", raising=False)
    monkeypatch.setattr(chromium, "SCRIPT", script)
    chromium.ensure_chromium.cache_clear()
    try:
        assert chromium.ensure_chromium() == (str(bin_dir / "chromium"), str(bin_dir / "chromedriver"))
    finally:
        chromium.ensure_chromium.cache_clear()


def test_a_failed_browser_install_gives_the_reason_to_skip_with(tmp_path, monkeypatch):
    script = fake_script(tmp_path / "setup-browser", 'echo "sudo: a password is required" >&2; exit 1')
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("AI_TAGGER_CHROMIUM", raising=False)
    monkeypatch.delenv("AI_TAGGER_CHROMEDRIVER", raising=False)
    monkeypatch.setattr(chromium, "SCRIPT", script)
    chromium.ensure_chromium.cache_clear()
    try:
        reason = chromium.ensure_chromium()
    finally:
        chromium.ensure_chromium.cache_clear()

    assert isinstance(reason, str)
    assert "setup-browser failed (exit 1)" in reason and "a password is required" in reason
