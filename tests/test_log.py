"""Stash's log protocol on stderr, with secrets and image data redacted whatever the caller writes."""

from __future__ import annotations

import base64
import io

from ai_tagger.log import Log


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_lines_use_stash_level_prefixes():
    out = io.StringIO()
    log = Log(out)
    log.info("hello")
    log.error("two\nlines")
    assert lines(out) == ["\x01i\x02hello", "\x01e\x02two", "\x01e\x02lines"]


def test_registered_secrets_are_redacted():
    out = io.StringIO()
    log = Log(out)
    log.add_secret("sk-very-secret")
    log.warning("gateway said: bad key sk-very-secret")
    assert "sk-very-secret" not in out.getvalue()


def test_base64_image_data_is_never_written():
    out = io.StringIO()
    blob = base64.b64encode(bytes(range(256)) * 4).decode()
    Log(out).debug(f"payload data:image/jpeg;base64,{blob} and raw {blob}")
    assert blob[:50] not in out.getvalue()


def test_progress_is_a_fraction_and_throttled():
    out = io.StringIO()
    log = Log(out)
    for i in range(100):
        log.progress(i / 1000)
    log.progress(1.0)
    progress = [line for line in lines(out) if line.startswith("\x01p\x02")]
    assert progress[-1] == "\x01p\x021.0000"
    assert len(progress) < 10
