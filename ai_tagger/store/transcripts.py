"""The ``transcripts`` table: what each file's sound said, per speech model and audio budget.

Keyed by the file's content fingerprint, so re-tuning thresholds, re-running after an error, or
a duplicate file never pays for speech recognition twice. A file found to have no sound is
stored too (``text`` NULL): it is not extracted again either. The table is created by the
cache's migrations (:data:`ai_tagger.store.cache.MIGRATIONS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ai_tagger.analyze.gateway.base import Usage
from ai_tagger.store.cache import Cache, answer_key

AUDIO_VERSION = "1"
"""Part of the key: bump it when the extraction changes what a model hears."""



@dataclass(frozen=True)
class StoredTranscript:
    """A cached result: ``text`` None means the file has no sound."""

    text: str | None
    seconds: float
    usage: Usage


def transcript_key(fingerprint: str, model: str, max_seconds: float) -> str:
    return answer_key("transcript", AUDIO_VERSION, fingerprint, model, f"{max_seconds:g}")


class TranscriptStore:
    """Reads and writes ``transcripts`` through the run's :class:`~ai_tagger.store.cache.Cache`."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def get(self, key: str) -> StoredTranscript | None:
        rows = self.cache.query(
            "SELECT text, seconds, prompt_tokens, completion_tokens FROM transcripts WHERE key = ?", (key,)
        )
        if not rows:
            return None
        text, seconds, prompt, completion = rows[0]
        return StoredTranscript(text, float(seconds), Usage(int(prompt), int(completion)))

    def put(
        self, key: str, fingerprint: str, model: str, text: str | None, seconds: float, usage: Usage | None = None
    ) -> None:
        usage = usage or Usage()
        self.cache.transaction([(
            "INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, fingerprint, model, text, seconds, usage.prompt_tokens, usage.completion_tokens, time.time()),
        )])  # fmt: skip
