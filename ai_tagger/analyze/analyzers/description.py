"""The description analyzer (``writeDetails``): a short description of the item.

It rides along in the tag request (one request per item): the tag analyzer asks for it, and
this analyzer takes it from the tag answer, fresh or cached. Providers that cannot describe
(``labels``, ``local``) are said once in the log.

With ``descriptionModel`` naming another model on the same gateway, that model is asked instead,
with the same frames (and transcript), in a request of its own; its answers are cached per file
like the tag answers. Re-apply then writes no description: it reads only the tag answer.
"""

from __future__ import annotations

from typing import ClassVar

from ai_tagger.analyze.answers import Answers
from ai_tagger.analyze.base import AnalyzerContext, DescriptionFinding, Findings, TranscriptFinding, register_analyzer
from ai_tagger.analyze.galleries import AnswerMembers
from ai_tagger.analyze.gateway.base import TagAnswer, create_provider
from ai_tagger.media.gallery import GalleryMedia
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item

DESCRIBING_PROVIDERS = frozenset({"openai"})
"""Providers whose tag request can also ask for a description."""
MAX_CHARS = 1000


class DescriptionAnalyzer:
    name: ClassVar[str] = "description"

    def __init__(self, describer: Answers | None = None) -> None:
        self.describer = describer
        """Answers from ``descriptionModel``, when it is not the vision model."""

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> DescriptionFinding | None:
        if self.describer is not None:
            return self._ask(item, media, found)
        answer = found.get(TagAnswer)
        text = " ".join((answer.description or "").split())[:MAX_CHARS] if answer is not None else ""
        return DescriptionFinding(text) if text else None

    def _ask(self, item: Item, media: ItemMedia, found: Findings) -> DescriptionFinding | None:
        assert self.describer is not None
        if isinstance(media, GalleryMedia):
            answer = self._gallery(item, media)
        elif item.file is None:
            return None
        else:
            transcript = found.get(TranscriptFinding)
            answer = self.describer.answer(item, media, transcript=transcript.text if transcript else "")
        text = " ".join((answer.description or "").split())[:MAX_CHARS]
        return DescriptionFinding(text, usage=answer.usage, calls=answer.calls) if text else None

    def _gallery(self, gallery: Item, media: GalleryMedia) -> TagAnswer:
        """A gallery has no file: the describing model sees its sampled members, as the tag request does,
        and the answer is cached under those members, so a preview followed by a run pays once."""
        assert self.describer is not None
        members = AnswerMembers(self.describer)
        key = members.group_key(gallery, media.members, "describe")
        cached = members.cached(key)
        if cached is not None:
            return cached
        answer = members.ask(gallery, media.shots().pictures)
        if key is not None:
            members.store(key, f"gallery:{gallery.id}", answer)
        return answer


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
    model = settings.describer
    if model is None:
        return DescriptionAnalyzer()
    if not context.fresh:
        return None
    own = settings.model_copy(update={"model": model, "description_model": None})
    return DescriptionAnalyzer(
        Answers(client=context.client, settings=own, provider=create_provider(own), log=context.log,
                vocabulary=context.vocabulary, cache=context.cache)  # fmt: skip
    )
