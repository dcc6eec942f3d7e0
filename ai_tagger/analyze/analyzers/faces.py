"""The performer analyzer (``recognizePerformers``): faces in the item's frames matched to performers.

Uses the frames the tag analyzer uses (extracted once per item), whatever the provider: faces
are always computed on this machine. The face models and the index load once per run, in the
factory; a missing face package stops the run there, before any item is marked.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from ai_tagger.analyze.base import AnalyzerContext, Findings, PerformerFinding, register_analyzer
from ai_tagger.analyze.faces.recognizer import Recognizer
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item
from ai_tagger.store.cache import Cache


class FaceAnalyzer:
    name: ClassVar[str] = "faces"

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer

    def analyze(self, item: Item, media: ItemMedia, found: Findings) -> PerformerFinding | None:
        finding = self.recognizer.finding(item.kind, media.shots().pictures)
        return finding if finding.matches else None


@register_analyzer("faces", order=30)
def faces(context: AnalyzerContext) -> FaceAnalyzer | None:
    if not context.settings.recognize_performers or not context.fresh:
        return None
    cache = context.cache
    if cache is None:
        context.log.info("disableCache is on: the face index is rebuilt in a temporary file for this run")
        cache = Cache(Path(tempfile.mkdtemp(prefix="ai-tagger-faces-")) / "faces.sqlite3")
    return FaceAnalyzer(Recognizer.open(context.client, cache, context.settings, context.log))
