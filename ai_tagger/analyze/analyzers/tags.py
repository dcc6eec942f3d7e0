"""The tag analyzer: the model's tag candidates for the item (cache, else frames -> provider)."""

from __future__ import annotations

from typing import ClassVar

from ai_tagger.analyze.answers import Answers
from ai_tagger.analyze.base import AnalyzerContext, Findings, TranscriptFinding, register_analyzer
from ai_tagger.analyze.gateway.base import TagAnswer
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item


class TagAnalyzer:
    name: ClassVar[str] = "tags"

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> TagAnswer | None:
        """The answer; None when re-apply already put the cached answer in ``found``."""
        if found.get(TagAnswer) is not None:
            return None
        transcript = found.get(TranscriptFinding)
        return self.answers.answer(item, media, transcript=transcript.text if transcript else "")


@register_analyzer("tags", order=20)
def tags(context: AnalyzerContext) -> TagAnalyzer:
    return TagAnalyzer(
        Answers(
            client=context.client,
            settings=context.settings,
            provider=context.provider,
            log=context.log,
            vocabulary=context.vocabulary,
            cache=context.cache,
        )
    )
