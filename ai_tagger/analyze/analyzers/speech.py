"""The speech analyzer: what a scene's sound says (``transcribeAudio``), for its tag request to read.

It runs before the tag analyzer, which sends the transcript (cut to a token budget, quoted as
data) in the same request as the frames: the vision model tags from what is seen and said, in
one request. Scenes without sound, images, and scenes whose transcription failed give no
finding; their tag request has the frames alone.
"""

from __future__ import annotations

from typing import ClassVar

from ai_tagger.analyze.base import AnalyzerContext, Findings, TranscriptFinding, register_analyzer
from ai_tagger.analyze.gateway.base import Usage
from ai_tagger.analyze.speech.service import Speech, trim, used
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item
from ai_tagger.store.transcripts import TranscriptStore


class SpeechAnalyzer:
    name: ClassVar[str] = "speech"

    def __init__(self, speech: Speech) -> None:
        self.speech = speech

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> TranscriptFinding | None:
        heard = self.speech.hear(item, media)
        transcript = heard.transcript
        if transcript is None or not transcript.text.strip():
            return None
        fresh = not heard.cached
        finding = TranscriptFinding(
            trim(transcript.text), usage=transcript.usage if fresh else Usage(), calls=transcript.calls if fresh else 0
        )
        how = f"{transcript.seconds:.0f} s heard by {transcript.model}" if fresh else "cached"
        self.speech.log.info(f'{item.label}: speech ({how}): "{finding.first_words()}"')
        return finding


@register_analyzer("speech", order=10)
def speech(context: AnalyzerContext) -> SpeechAnalyzer | None:
    settings = context.settings
    if not settings.speech or not context.fresh:
        return None
    if not used(settings):
        context.log.warning(
            f"transcribeAudio: provider {settings.provider} cannot read a transcript, so no speech is transcribed "
            "(use provider openai)"
        )
        return None
    store = TranscriptStore(context.cache) if context.cache is not None else None
    return SpeechAnalyzer(Speech(settings, log=context.log, store=store))
