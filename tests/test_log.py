"""Stash's log protocol on stderr, with secrets and image data redacted whatever the caller writes."""

from __future__ import annotations

import base64
import io
import json

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


def test_secrets_are_redacted_in_every_form_they_can_be_printed_in():
    out = io.StringIO()
    log = Log(out)
    log.add_secret("sk-key-with\nX-Evil: 1")
    log.add_url("http://user:pass-word@gateway:4000/v1?key=query-secret")
    quoted = json.dumps({"key": "sk-key-with\nX-Evil: 1"})
    log.error(f"bad header {'sk-key-with' + chr(10) + 'X-Evil: 1'!r}; {quoted}; at http://other:pw12@host/")
    log.error("url http://user:pass-word@gateway:4000/v1?key=query-secret and key=query-secret")
    text = out.getvalue()
    for leaked in ("sk-key-with", "X-Evil", "pass-word", "query-secret", "pw12"):
        assert leaked not in text


def test_answer_data_is_redacted_like_log_lines():
    log = Log(io.StringIO())
    log.add_secret("cookie-value-1234")
    data = {"error": "sent cookie-value-1234", "items": [{"note": "cookie-value-1234"}], "count": 3}
    assert log.redact_data(data) == {"error": "sent ***", "items": [{"note": "***"}], "count": 3}
