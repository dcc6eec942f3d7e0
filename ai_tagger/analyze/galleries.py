"""A gallery's answer, rolled up from a few of its member images without paying twice.

A gallery is to its images what a scene is to its frames: up to ``imagesPerGallery`` members,
spread over the set (:mod:`ai_tagger.stash.galleries`), are its frames, and the usual decision
(multi-frame score, ``minFrames``, rules, review tier) turns "seen in 5 of 6 images" into
confidence. What each member contributes:

* a member whose own answer is already cached (it was tagged as an image before) brings that
  answer, less the tags the user removed from that image: no call, no tokens;
* the other members go to the model together, in one request, exactly like a scene's frames
  (so a 200-image set costs what one scene costs); that request's answer is cached too, so a
  preview followed by a run, or a run after a crash, pays once;
* a member that cannot be read is left out (logged); the gallery fails only if none can be read.

When the same run also tags untagged images (``tag_untagged``, ``preview``), an untagged member
is answered as the image it is, under its own cache key and key lock, whether the image pass or
the gallery gets there first: it is paid once, for both.

The rolled-up answer is cached under the gallery's own key, so re-apply re-decides it later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ai_tagger.analyze.answers import Answers
from ai_tagger.analyze.gateway.base import Candidate, TagAnswer, Usage
from ai_tagger.analyze.gateway.prompt import PROMPT_VERSION, item_context
from ai_tagger.errors import MediaError
from ai_tagger.log import Log
from ai_tagger.media.gallery import GalleryMedia
from ai_tagger.media.source import ItemMedia
from ai_tagger.stash.models import Item
from ai_tagger.store.cache import answer_key


class Members(Protocol):
    """What the roll-up needs from the run's answer machinery: its cache, media and provider."""

    def member_key(self, member: Item) -> str | None:
        """The member image's own cache key, as tagging that image would compute it."""

    def group_key(self, gallery: Item, members: Sequence[Item], purpose: str) -> str | None:
        """A cache key for these members of this gallery (``purpose``: ``asked`` or ``gallery``)."""

    def cached(self, cache_key: str | None) -> TagAnswer | None: ...

    def ask(self, gallery: Item, pictures: list[bytes]) -> TagAnswer:
        """One request with these pictures as the gallery's frames."""

    def own(self, member: Item, media: ItemMedia) -> TagAnswer:
        """The member's answer as an image (cached under its own key; paid once per key)."""

    def store(self, cache_key: str, fingerprint: str, answer: TagAnswer) -> None: ...


@dataclass(frozen=True)
class Rollup:
    """A gallery's answer and where its evidence came from."""

    answer: TagAnswer
    members: list[Item]
    """The members that count as its frames, in order (frame N is ``members[N - 1]``)."""
    cached_members: int
    left_out: list[str]


def remap(candidates: Sequence[Candidate], frames: Sequence[int]) -> list[Candidate]:
    """A part's candidates with its frame numbers turned into the gallery's (``frames[n - 1]``).

    A candidate that names no valid frame of the part counts as seen in all of them: the model
    saw only these pictures and did not narrow it down (as a scene's answer without frames).
    """
    out = []
    for candidate in candidates:
        seen = tuple(sorted({frames[f - 1] for f in candidate.frames if 1 <= f <= len(frames)}))
        out.append(candidate.model_copy(update={"frames": seen or tuple(frames)}))
    return out


class GalleryAnswers:
    """Answers for galleries; shared by all workers of a run."""

    def __init__(
        self,
        *,
        members: Members,
        rejection_keys: Callable[[str], set[str]],
        log: Log,
        rejections: Callable[[Item], set[str]] | None = None,
        images_in_run: bool = False,
    ) -> None:
        """``rejection_keys(name)``: every key a rejection of the tag a candidate names is stored under;
        ``rejections(member)``: the tags the user removed from that image (ids or ``new:`` keys);
        ``images_in_run``: this run tags untagged images too, so untagged members get their own answers."""
        self.members = members
        self.rejection_keys = rejection_keys
        self.log = log
        self.rejections = rejections
        self.images_in_run = images_in_run

    def answer(self, gallery: Item, media: GalleryMedia) -> Rollup:
        """The gallery's rolled-up answer from its sampled members (``media.members``, not empty)."""
        sample = media.members
        keys = {m.id: self.members.member_key(m) for m in sample}
        known = {m.id: self.members.cached(keys[m.id]) for m in sample}
        cached_before = sum(answer is not None for answer in known.values())
        pictures: dict[str, bytes] = {}
        left_out = []
        spent_on_members = Usage()
        member_calls = 0
        for member in sample:
            if known[member.id] is not None:
                continue
            try:
                if self.images_in_run and not member.tag_ids and keys[member.id] is not None:
                    own = self.members.own(member, media.of(member))
                    known[member.id] = own
                    spent_on_members.add(own.usage)
                    member_calls += 0 if own.cached else own.calls
                else:
                    pictures[member.id] = media.picture(member)
            except MediaError as exc:
                self.log.warning(f"{gallery.label}: {member.label} left out: {exc}")
                left_out.append(member.id)
        used = [m for m in sample if m.id not in left_out]
        if not used:
            raise MediaError(f"none of its {len(sample)} sampled image(s) could be read")
        asked = [m for m in used if m.id in pictures]
        frame_of = {m.id: n for n, m in enumerate(used, start=1)}
        candidates: list[Candidate] = []
        for member in used:
            cached = known[member.id]
            if cached is not None:
                candidates += remap(self._kept(member, cached.candidates), [frame_of[member.id]])
        fresh = self._ask(gallery, asked, [pictures[m.id] for m in asked]) if asked else None
        if fresh is not None:
            candidates += remap(fresh.candidates, [frame_of[m.id] for m in asked])
        usage, calls = spent_on_members, member_calls
        if fresh is not None and not fresh.cached:
            usage.add(fresh.usage)
            calls += fresh.calls
        answer = TagAnswer(
            candidates,
            usage,
            calls=calls,
            notes=list(fresh.notes) if fresh else [],
            frame_count=len(used),
            cached=calls == 0,
            description=fresh.description if fresh else None,
        )
        gallery_key = self.members.group_key(gallery, used, "gallery")
        if gallery_key is not None:
            self.members.store(gallery_key, f"gallery:{gallery.id}", answer)
            answer = dataclasses.replace(answer, key=gallery_key)
        return Rollup(answer, used, cached_before, left_out)

    def _ask(self, gallery: Item, asked: list[Item], pictures: list[bytes]) -> TagAnswer:
        """The uncached members' answer: from the cache if these members were asked before, else one call."""
        asked_key = self.members.group_key(gallery, asked, "asked")
        earlier = self.members.cached(asked_key)
        if earlier is not None:
            return earlier
        fresh = self.members.ask(gallery, pictures)
        if asked_key is not None:
            self.members.store(asked_key, f"gallery:{gallery.id}", fresh)
        return fresh

    def _kept(self, member: Item, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The member's cached evidence less the tags the user removed from that image."""
        rejected = self.rejections(member) if self.rejections is not None else set()
        if not rejected:
            return list(candidates)
        return [c for c in candidates if not self.rejection_keys(c.name) & rejected]


class AnswerMembers:
    """:class:`Members` over the run's :class:`~ai_tagger.analyze.answers.Answers`: the same cache keys,
    media options, request shape and gateway slots as scenes and images, so a member's cached
    image answer is found under the very key tagging that image stored it."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def _context(self, item: Item) -> str:
        settings = self.answers.settings
        return item_context(item) if settings.include_context and not settings.local else ""

    def member_key(self, member: Item) -> str | None:
        return self.answers.key_for(member, self._context(member))

    def group_key(self, gallery: Item, members: Sequence[Item], purpose: str) -> str | None:
        if self.answers.cache is None or any(m.file is None for m in members):
            return None
        settings = self.answers.settings
        plan = (purpose, settings.frame_layout, settings.max_image_side, settings.image_detail)
        gateway: tuple[object, ...] = (settings.provider, settings.gateway_url, settings.model, PROMPT_VERSION)
        if self.answers.describes:
            gateway = (*gateway, "describe")
        fingerprints = tuple(m.file.fingerprint() for m in members if m.file is not None)
        return answer_key(fingerprints, "gallery", plan, gateway, self._context(gallery))

    def cached(self, cache_key: str | None) -> TagAnswer | None:
        return self.answers.cached(cache_key)

    def ask(self, gallery: Item, pictures: list[bytes]) -> TagAnswer:
        return self.answers.ask_pictures(gallery, pictures, self._context(gallery))

    def own(self, member: Item, media: ItemMedia) -> TagAnswer:
        return self.answers.answer(member, media)

    def store(self, cache_key: str, fingerprint: str, answer: TagAnswer) -> None:
        if self.answers.cache is not None:
            self.answers.cache.put(
                cache_key,
                fingerprint,
                answer.candidates,
                answer.frame_count,
                answer.usage,
                description=answer.description,
            )
