"""The description analyzer (``writeDetails``): a short description of the item.

It rides along in the tag request (one request per item): the tag analyzer asks for it, and
this analyzer takes it from the tag answer, fresh or cached. Providers that cannot describe
(``labels``, ``local``) are said once in the log.
"""

from __future__ import annotations

from typing import ClassVar

from ai_tagger.analyze.base import AnalyzerContext, DescriptionFinding, Findings, register_analyzer
from ai_tagger.analyze.gateway.base import TagAnswer
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item

DESCRIBING_PROVIDERS = frozenset({"openai"})
"""Providers whose tag request can also ask for a description."""
MAX_CHARS = 1000


class DescriptionAnalyzer:
    name: ClassVar[str] = "description"

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> DescriptionFinding | None:
        answer = found.get(TagAnswer)
        text = " ".join((answer.description or "").split())[:MAX_CHARS] if answer is not None else ""
        return DescriptionFinding(text) if text else None


@register_analyzer("description", order=40)
def description(context: AnalyzerContext) -> DescriptionAnalyzer | None:
    settings = context.settings
    if not settings.write_details:
        return None
    if settings.provider not in DESCRIBING_PROVIDERS:
        context.log.info(
            f"writeDetails: the {settings.provider} provider cannot describe items; no descriptions are written"
        )
        return None
    return DescriptionAnalyzer()
