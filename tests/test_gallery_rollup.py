"""A gallery's answer rolled up from its members: cached members are evidence, not calls.

The roll-up is tested against the bundled Stash (real galleries, real paging) with a stand-in
for the run's answer machinery that records every call, so the cost of each case is exact.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ai_tagger.analyze.galleries import GalleryAnswers, Rollup, remap
from ai_tagger.analyze.gateway.base import Candidate, TagAnswer, Usage
from ai_tagger.decide.decision import TOO_FEW_FRAMES, Policy, decide
from ai_tagger.decide.item import rejection_keys_of
from ai_tagger.decide.rules import Rules
from ai_tagger.errors import MediaError
from ai_tagger.log import Log
from ai_tagger.stash.client import StashClient
from ai_tagger.stash.galleries import sampled_members
from ai_tagger.stash.models import Item, ServerConnection, Tag
from ai_tagger.stash.vocabulary import Vocabulary
from tests.servers.stash_server import FakeStash

TAGS = {"red": "Red", "green": "Grass", "blue": "Water"}


class Recorder:
    """Members whose pictures are their colour names; the model tags each colour it sees."""

    def __init__(self, colours: dict[str, str], unreadable: Sequence[str] = ()) -> None:
        self.colours = colours
        self.unreadable = set(unreadable)
        self.store_: dict[str, TagAnswer] = {}
        self.calls: list[list[str]] = []

    def member_key(self, member: Item) -> str | None:
        return f"image:{member.id}"

    def group_key(self, gallery: Item, members: Sequence[Item], purpose: str) -> str | None:
        return f"{purpose}:{gallery.id}:" + ",".join(m.id for m in members)

    def cached(self, cache_key: str | None) -> TagAnswer | None:
        found = self.store_.get(cache_key or "")
        return None if found is None else TagAnswer(found.candidates, Usage(), calls=0, cached=True)

    def media(self, members: list[Item]) -> Any:
        """A gallery's media whose pictures are the members' colour names."""
        recorder = self

        class Media:
            def __init__(self) -> None:
                self.members = members

            def of(self, member: Item) -> Item:
                return member

            def picture(self, member: Item) -> bytes:
                if member.id in recorder.unreadable:
                    raise MediaError("cannot identify image file")
                return recorder.colours[member.id].encode()

        return Media()

    def ask(self, gallery: Item, pictures: list[bytes]) -> TagAnswer:
        seen = [p.decode() for p in pictures]
        self.calls.append(seen)
        frames: dict[str, list[int]] = {}
        for number, colour in enumerate(seen, start=1):
            frames.setdefault(colour, []).append(number)
        candidates = [Candidate(name=TAGS[c], confidence=0.9, frames=tuple(f)) for c, f in frames.items()]
        return TagAnswer(candidates, Usage(100 * len(pictures), 20), frame_count=len(pictures))

    def own(self, member: Item, media: Any) -> TagAnswer:
        self.calls.append([f"image {member.id}"])
        self.tag_image(member.id)
        found = self.store_[f"image:{member.id}"]
        return TagAnswer(found.candidates, Usage(100, 20), frame_count=1)

    def store(self, cache_key: str, fingerprint: str, answer: TagAnswer) -> None:
        self.store_[cache_key] = answer

    def tag_image(self, image_id: str) -> None:
        """The member was tagged as an image before: its own answer is cached."""
        name = TAGS[self.colours[image_id]]
        self.store_[f"image:{image_id}"] = TagAnswer([Candidate(name=name, confidence=0.9)], frame_count=1)


@pytest.fixture
def stash() -> FakeStash:
    with FakeStash() as server:
        yield server


def gallery_of(stash: FakeStash, colours: list[str]) -> tuple[Item, dict[str, str]]:
    ids = [stash.add_image(f"/nowhere/{n:04d}.jpg", width=8, height=8) for n in range(len(colours))]
    stash.add_gallery(image_ids=ids)
    client = StashClient(ServerConnection.model_validate(stash.server_connection()))
    [gallery] = client.untagged("gallery")
    return gallery, dict(zip(ids, colours, strict=True))


class Run:
    """What the tagger does for a gallery: sample its members, then roll their evidence up."""

    def __init__(self, client: StashClient, answers: GalleryAnswers, members: Recorder, wanted: int) -> None:
        self.client, self.answers, self.members, self.wanted = client, answers, members, wanted

    def answer(self, gallery: Item) -> Rollup | None:
        sample = sampled_members(self.client, gallery, self.wanted)
        return self.answers.answer(gallery, self.members.media(sample)) if sample else None


def rollup(
    stash: FakeStash,
    members: Recorder,
    *,
    images_in_run: bool = False,
    wanted: int = 6,
    rejected: dict[str, set[str]] | None = None,
    vocabulary: Vocabulary | None = None,
) -> Run:
    client = StashClient(ServerConnection.model_validate(stash.server_connection()))
    answers = GalleryAnswers(
        members=members,
        rejection_keys=functools.partial(rejection_keys_of, vocabulary=vocabulary or Vocabulary([]), rules=Rules()),
        log=Log(io.StringIO()),
        rejections=lambda m: (rejected or {}).get(m.id, set()),
        images_in_run=images_in_run,
    )
    return Run(client, answers, members, wanted)


def applied(answer: TagAnswer, min_frames: int = 1) -> set[str]:
    policy = Policy(threshold=0.5, max_tags=10, only_existing=False, min_frames=min_frames)
    return {v.label for v in decide(answer.candidates, answer.frame_count, Vocabulary([]), policy).applied}


def test_members_are_a_galleries_frames_in_one_request(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red"] * 200)
    members = Recorder(colours)
    result = rollup(stash, members).answer(gallery)
    assert members.calls == [["red"] * 6]
    assert result.answer.frame_count == 6 and result.answer.calls == 1
    assert result.answer.usage.total_tokens == 620
    assert applied(result.answer) == {"Red"}


def test_sampled_count_never_exceeds_images_per_gallery(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["blue"] * 50)
    members = Recorder(colours)
    result = rollup(stash, members, wanted=4).answer(gallery)
    assert len(members.calls[0]) == len(result.members) == 4


def test_mixed_gallery_keeps_only_what_passes_min_frames(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "red", "green", "red", "red", "red"])
    answer = rollup(stash, Recorder(colours)).answer(gallery).answer
    assert applied(answer, min_frames=2) == {"Red"}
    verdicts = decide(
        answer.candidates,
        answer.frame_count,
        Vocabulary([]),
        Policy(threshold=0.1, max_tags=10, only_existing=False, min_frames=2),
    ).verdicts
    assert {v.label: v.outcome for v in verdicts}["Grass"] == TOO_FEW_FRAMES


def test_a_gallery_whose_members_are_all_cached_costs_nothing(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "red", "blue"])
    members = Recorder(colours)
    for image_id in colours:
        members.tag_image(image_id)
    result = rollup(stash, members).answer(gallery)
    assert members.calls == [] and result.answer.calls == 0 and result.answer.cached
    assert result.cached_members == 3
    assert result.answer.usage.total_tokens == 0
    red = next(c for c in result.answer.candidates if c.name == "Red")
    assert red.frames == (1,) or red.frames == (2,)


def test_only_uncached_members_are_sent(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "green", "blue", "red"])
    members = Recorder(colours)
    first, *_, last = colours
    members.tag_image(first)
    members.tag_image(last)
    result = rollup(stash, members).answer(gallery)
    assert members.calls == [["green", "blue"]]
    by_name = {}
    for c in result.answer.candidates:
        by_name.setdefault(c.name, set()).update(c.frames)
    assert by_name == {"Red": {1, 4}, "Grass": {2}, "Water": {3}}


def test_the_same_members_are_never_asked_twice(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "green"])
    members = Recorder(colours)
    rollup(stash, members).answer(gallery)
    again = rollup(stash, members).answer(gallery)
    assert len(members.calls) == 1 and again.answer.calls == 0


def test_a_tag_the_user_removed_from_a_member_is_not_its_evidence(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "red"])
    members = Recorder(colours)
    for image_id in colours:
        members.tag_image(image_id)
    red = Tag(id="5", name="Red")
    first, second = colours
    answer = rollup(stash, members, rejected={first: {"5"}}, vocabulary=Vocabulary([red])).answer(gallery).answer
    assert [(c.name, c.frames) for c in answer.candidates] == [("Red", (2,))]


def test_an_unreadable_member_is_left_out(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "green", "red"])
    broken = list(colours)[1]
    result = rollup(stash, Recorder(colours, unreadable=[broken])).answer(gallery)
    assert result.left_out == [broken] and result.answer.frame_count == 2
    assert applied(result.answer) == {"Red"}


def test_a_gallery_with_no_readable_member_fails(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "green"])
    with pytest.raises(MediaError, match="none of its 2 sampled image"):
        rollup(stash, Recorder(colours, unreadable=list(colours))).answer(gallery)


def test_an_empty_gallery_has_no_answer(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, [])
    members = Recorder(colours)
    assert rollup(stash, members).answer(gallery) is None and members.calls == []


def test_a_candidate_without_frames_counts_as_seen_in_every_picture_of_its_request() -> None:
    plain = Candidate(name="Red", confidence=0.8)
    cited = Candidate(name="Sky", confidence=0.8, frames=(2, 9))
    assert [c.frames for c in remap([plain, cited], [3, 5])] == [(3, 5), (5,)]


def test_gallery_answer_is_cached_for_reapply(stash: FakeStash, tmp_path: Path) -> None:
    gallery, colours = gallery_of(stash, ["red"])
    members = Recorder(colours)
    result = rollup(stash, members).answer(gallery)
    assert result.answer.key == f"gallery:{gallery.id}:" + ",".join(colours)
    assert members.store_[result.answer.key].candidates == result.answer.candidates


def test_when_the_run_tags_images_too_untagged_members_are_answered_as_images(stash: FakeStash) -> None:
    gallery, colours = gallery_of(stash, ["red", "blue"])
    members = Recorder(colours)
    result = rollup(stash, members, images_in_run=True).answer(gallery)
    assert members.calls == [[f"image {i}"] for i in colours], "each paid once, under the image's own key"
    assert result.answer.calls == 2 and result.answer.usage.total_tokens == 240
    assert all(f"image:{i}" in members.store_ for i in colours), "the image pass finds them cached"
