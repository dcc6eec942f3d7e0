"""Faces: dlib's real models on real photographs, the face index, and the ``index_performers`` task."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from ai_tagger.analyze.base import PerformerFinding
from ai_tagger.analyze.faces.engine import FaceEngine, PictureError
from ai_tagger.analyze.faces.index import FaceIndex, Match
from ai_tagger.analyze.faces.recognizer import per_performer
from ai_tagger.decide.decision import APPLY, BELOW, REVIEW, Policy
from ai_tagger.decide.item import ON_ITEM, Inputs, decide_performers
from ai_tagger.settings import Settings
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import SCHEMA_VERSION, Cache
from ai_tagger.store.faces import MAX_LEARNED, FaceStore, Source
from tests import faces, imports, media
from tests.conftest import PLUGIN_ID, configure, run_plugin
from tests.servers.stash_server import FakeStash

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.load()


@pytest.fixture(scope="module")
def boxes():
    from ai_tagger.analyze.faces.indexer import nudenet_boxes
    from ai_tagger.log import Log

    return nudenet_boxes(Log(io.StringIO()))


def _embedding(engine: FaceEngine, boxes, picture: bytes) -> tuple[float, ...]:
    from ai_tagger.analyze.faces.indexer import find_faces

    [face] = find_faces(engine, boxes, picture)
    return face.embedding


def _distance(a, b) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def test_the_same_person_altered_is_near_and_different_people_are_far(engine, boxes):
    pictures = {name: faces.photo_jpeg(name) for name in faces.PEOPLE}
    pictures |= {f"{name} altered": faces.jpeg(faces.altered(name)) for name in faces.PEOPLE}
    vectors = {name: _embedding(engine, boxes, picture) for name, picture in pictures.items()}
    for a, b in itertools.combinations(vectors, 2):
        same = a.split()[0] == b.split()[0]
        distance = _distance(vectors[a], vectors[b])
        assert (distance < 0.4) if same else (distance > 0.7), (a, b, distance)


def test_faceless_photos_have_no_face(engine, boxes):
    from ai_tagger.analyze.faces.indexer import find_faces

    for name in faces.FACELESS:
        assert find_faces(engine, boxes, faces.photo_jpeg(name)) == []


def test_dlib_alone_finds_the_astronaut_and_boxes_find_the_cameraman(engine):
    assert len(engine.faces(faces.photo_jpeg("astronaut"))) == 1
    picture = faces.photo_jpeg("camera")
    assert engine.faces(picture) == []  # he looks down: HOG misses him
    [face] = engine.faces(picture, [(181, 127, 85, 69)])  # NudeNet's "Male Face" box
    assert face.box[0] == 181


def test_a_corrupt_picture_is_a_picture_error(engine):
    with pytest.raises(PictureError):
        engine.faces(b"not a picture")


def _index(rows: dict[str, list[list[float]]]) -> FaceIndex:
    from ai_tagger.store.faces import pack

    return FaceIndex.build((pid, pack(v)) for pid in sorted(rows) for v in rows[pid])


def test_a_face_matches_its_nearest_performer_only_when_clearly_ahead():
    one, two = [0.0] * 128, [0.0] * 128
    two[0] = 1.0
    index = _index({"1": [one], "2": [two]})
    near_one = [0.1] + [0.0] * 127
    assert index.match(near_one, 0.5) == Match("1", pytest.approx(0.9), pytest.approx(0.1))
    halfway = [0.5] + [0.0] * 127
    assert index.match(halfway, 0.1) is None  # as near one as the other: nobody
    far = [0.0] * 127 + [0.9]
    assert index.match(far, 0.55) is None  # under the threshold


def test_a_performer_with_several_faces_matches_by_the_nearest():
    a, b, c = ([0.0] * 128 for _ in range(3))
    b[1], c[2] = 1.0, 1.0
    index = _index({"1": [a, b], "2": [c]})
    assert index.match([0.0, 0.95] + [0.0] * 126, 0.5).performer_id == "1"
    assert len(index) == 2


def test_a_scene_needs_the_performer_in_min_frames_and_an_image_one():
    strong, weak = Match("7", 0.7, 0.3), Match("8", 0.5, 0.5)
    names = {"7": "Seven", "8": "Eight"}
    [seven] = per_performer([[strong, weak], [strong], []], names, needed=2)
    assert (seven.performer_id, seven.confidence, seven.frames) == ("7", 0.7, (1, 2))  # 8: one frame only
    [eight] = per_performer([[weak]], names, needed=1)
    assert eight.confidence == 0.5


def test_performers_are_decided_on_their_own_threshold_and_review_floor():
    settings = Settings.from_stash({"performerThreshold": 60, "performerReviewConfidence": 45, "minConfidence": 90})
    policy = Policy.from_settings(settings)
    matches = per_performer([[Match("7", 0.7, 0.3), Match("8", 0.5, 0.5), Match("9", 0.62, 0.38)]],
                            {"7": "Seven", "8": "Eight", "9": "Nine"}, needed=1)
    inputs = Inputs(policy=policy, vocabulary=Vocabulary([]), current_performers=frozenset({"9"}))
    verdicts = decide_performers(PerformerFinding(matches), inputs)
    assert [(v.performer_id, v.outcome) for v in verdicts] == [("7", APPLY), ("9", ON_ITEM), ("8", REVIEW)]
    stricter = Policy.from_settings(Settings.from_stash({"performerThreshold": 55}))
    off = Inputs(policy=stricter, vocabulary=Vocabulary([]))
    assert [v.outcome for v in decide_performers(PerformerFinding(matches), off)] == [APPLY, APPLY, BELOW]


def test_review_confidence_is_the_performer_review_floor_unless_it_is_set_apart():
    assert Settings.from_stash({"reviewConfidence": 40}).performer_review == 0.4
    assert Settings.from_stash({"reviewConfidence": 40, "performerReviewConfidence": 30}).performer_review == 0.3
    assert Settings.from_stash({"reviewConfidence": 58, "minConfidence": 70}).performer_review is None


def test_the_face_tables_are_a_migration_of_the_cache_file(tmp_path):
    cache = Cache(tmp_path / "cache.sqlite3")
    assert cache.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    store = FaceStore(cache)
    store.record(Source("performer:1", "1", "url?t=1", "abc", "indexed"), [0.5] * 128)
    for n in range(MAX_LEARNED + 3):
        store.record(Source(f"image:{n}", "1", f"v{n}", f"sum{n}", "indexed"), [float(n)] * 128)
    rows = cache.query("SELECT origin FROM performer_faces WHERE performer_id = '1'")
    assert len(rows) == MAX_LEARNED + 1 and ("performer:1",) in rows
    cache.close()


# ---- the index_performers task, run as Stash runs it ----------------------------------------


@pytest.fixture
def cast(tmp_path: Path):
    """A fake Stash with four performers (astronaut, cameraman, one without an image, one whose
    image is a cup) and an image where the user set the astronaut (her altered copy)."""
    with FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, {"recognizePerformers": True})
        ids = {
            "astronaut": stash.add_performer("Eileen", faces.photo_jpeg("astronaut")),
            "camera": stash.add_performer("Cameraman", media.make_photo(tmp_path / "camera.png", "camera")),
            "nobody": stash.add_performer("No Picture"),
            "cup": stash.add_performer("Cup", faces.photo_jpeg("coffee")),
        }
        stash.add_image(
            faces.save(faces.altered("astronaut"), tmp_path / "her.jpg"), performer_ids=[ids["astronaut"]]
        )
        yield stash, ids


def test_index_performers_learns_each_face_and_names_every_performer_it_skips(cast):
    stash, ids = cast
    run = run_plugin(stash, {"mode": "index_performers"}, timeout=300)
    assert run.error is None, run.stderr
    assert run.output == {"performers": 4, "indexed": 2, "silhouette": 1, "no_face": 1, "learned": 1}
    text = "\n".join(run.log_lines())
    assert "'No Picture'" in text and "silhouette" in text
    assert "'Cup'" in text and "no face" in text


def test_an_unchanged_reindex_downloads_nothing_and_a_changed_image_is_read_again(cast):
    stash, ids = cast
    assert run_plugin(stash, {"mode": "index_performers"}, timeout=300).error is None
    before = sum(stash.media_requests.values())
    again = run_plugin(stash, {"mode": "index_performers"}, timeout=300)
    assert again.output == {"performers": 4, "unchanged": 4, "learned": 0}
    assert sum(stash.media_requests.values()) == before
    stash.set_performer_image(ids["cup"], faces.jpeg(faces.altered("camera")))
    changed = run_plugin(stash, {"mode": "index_performers"}, timeout=300)
    assert changed.output == {"performers": 4, "indexed": 1, "unchanged": 3, "learned": 0}


def test_a_corrupt_performer_image_is_skipped_and_the_task_goes_on(cast):
    stash, ids = cast
    stash.set_performer_image(ids["cup"], b"\x89PNG garbage")
    run = run_plugin(stash, {"mode": "index_performers"}, timeout=300)
    assert run.output["corrupt"] == 1 and run.output["indexed"] == 2
    assert any("'Cup'" in line for line in run.log_lines())


# ---- identify_performers: recognition alone, on a library made of altered copies ------------


@pytest.fixture
def library(tmp_path: Path):
    """Performers from the original photos; a library of altered copies (her image and a video
    of her, his image), the cat and the cup, and an image where the user set a performer."""
    with FakeStash() as stash:
        stash.set_plugin_settings(PLUGIN_ID, {"recognizePerformers": True, "framesPerScene": 2})
        her = stash.add_performer("Eileen", faces.photo_jpeg("astronaut"))
        him = stash.add_performer("Cameraman", faces.photo_jpeg("camera"))
        other = stash.add_performer("Someone Else")
        still = faces.save(faces.altered("astronaut"), tmp_path / "her.jpg")
        items = {
            "her image": ("image", stash.add_image(still)),
            "her video": ("scene", stash.add_scene(media.make_still_video(tmp_path / "her.mp4", still, seconds=4))),
            "his image": ("image", stash.add_image(faces.save(faces.altered("camera"), tmp_path / "him.jpg"))),
            "cat": ("image", stash.add_image(faces.save(media.photo("chelsea"), tmp_path / "cat.jpg"))),
            "cup": ("image", stash.add_image(faces.save(media.photo("coffee"), tmp_path / "cup.jpg"))),
            "user's": ("image", stash.add_image(tmp_path / "her.jpg", performer_ids=[other])),
        }
        yield stash, {"her": her, "him": him, "other": other}, items


RECOGNISED = {
    "her image": {"Eileen"},
    "her video": {"Eileen"},
    "his image": {"Cameraman"},
    "cat": set(),
    "cup": set(),
    "user's": {"Someone Else"},
}
"""Each library item's performers once recognition ran: the user's own performer stays as it was."""


def _cast_of(stash: FakeStash, items) -> dict[str, set[str]]:
    return {name: stash.performers_of(kind, item_id) for name, (kind, item_id) in items.items()}


def test_identify_performers_puts_each_performer_on_their_items_and_nothing_on_faceless_ones(library):
    stash, people, items = library
    run = run_plugin(stash, {"mode": "identify_performers"}, timeout=300)
    assert run.error is None, run.stderr
    assert _cast_of(stash, items) == RECOGNISED
    assert run.output["performers_added"] == 3


def test_identify_rerun_reads_and_writes_nothing(library):
    stash, people, items = library
    assert run_plugin(stash, {"mode": "identify_performers"}, timeout=300).error is None
    mutations, media_reads = stash.mutation_count, sum(stash.media_requests.values())
    again = run_plugin(stash, {"mode": "identify_performers"}, timeout=300)
    assert again.output["performers_added"] == 0
    assert stash.mutation_count == mutations and sum(stash.media_requests.values()) == media_reads


def test_undo_removes_only_the_performers_the_plugin_added(library):
    stash, people, items = library
    assert run_plugin(stash, {"mode": "identify_performers"}, timeout=300).error is None
    kind, her_image = items["her image"]
    stash.set_item_performers(kind, her_image, ["Eileen", "Someone Else"])  # the user adds one
    undo = run_plugin(stash, {"mode": "undo_last"})
    assert undo.error is None, undo.stderr
    assert undo.output["removed"]["performers"] == 3
    assert _cast_of(stash, items) == {
        "her image": {"Someone Else"},
        "her video": set(),
        "his image": set(),
        "cat": set(),
        "cup": set(),
        "user's": {"Someone Else"},
    }


def test_identify_dry_run_lists_performers_and_writes_nothing(library):
    stash, people, items = library
    run = run_plugin(stash, {"mode": "identify_performers", "dryRun": True}, timeout=300)
    assert run.output["dry_run"] is True and run.output["performers_added"] == 3
    assert {p["performer"] for i in run.output["items_listed"] for p in i["performers"]} == {"Eileen", "Cameraman"}
    assert all(not cast for name, cast in _cast_of(stash, items).items() if name != "user's")


def test_missing_face_packages_end_the_run_with_the_install_command_and_mark_nothing(library, monkeypatch):
    stash, people, items = library
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": True})
    imports.without(monkeypatch, ["dlib"])
    for mode in ("index_performers", "identify_performers", "tag_untagged"):
        run = run_plugin(stash, {"mode": mode})
        assert run.returncode == 1, run.stderr
        assert "requirements-faces.txt" in run.error and "Install or update dependencies" in run.error
        assert len(run.log_lines("e")) == 1 and "Traceback" not in run.stderr
    assert stash.mutation_count == 0


def test_runs_without_recognition_never_import_the_face_packages(stash, model, red_video, monkeypatch, tmp_path):
    stash.add_scene(red_video)
    configure(stash, model)
    out = imports.record(monkeypatch, tmp_path / "modules.txt")

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.output["tagged"] == 1
    assert imports.top_level(out) & imports.FACES == set()


# ---- recognition in the tagging pass (the analyzer seam) ------------------------------------


def test_tag_untagged_with_the_local_model_also_adds_performers_and_a_rerun_writes_nothing(library):
    pytest.importorskip("nudenet")
    stash, people, items = library
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": True, "framesPerScene": 2})

    run = run_plugin(stash, {"mode": "tag_untagged"}, timeout=300)

    assert run.error is None, run.stderr
    assert _cast_of(stash, items) == {**RECOGNISED, "user's": {"Someone Else", "Eileen"}}
    assert run.output["performers_applied"] == 4
    performer_writes = [v for op, v in stash.operations if "performer_ids" in (v.get("input") or v.get("add") or {})]
    assert all("tag_ids" in (v.get("input") or v.get("add")) for v in performer_writes), "one write with the tags"

    mutations = stash.mutation_count
    again = run_plugin(stash, {"mode": "tag_untagged"}, timeout=300)
    assert again.error is None and stash.mutation_count == mutations

    report = run_plugin(stash, {"mode": "report"})
    assert {(r["performer"], r["applied"]) for r in report.output["performers"]} == {("Eileen", 3), ("Cameraman", 1)}

    undo = run_plugin(stash, {"mode": "undo_last"})
    assert undo.output["removed"]["performers"] == 4
    assert _cast_of(stash, items)["user's"] == {"Someone Else"}
    assert all(not cast for name, cast in _cast_of(stash, items).items() if name != "user's")


def test_preview_lists_performers_and_writes_nothing(library):
    pytest.importorskip("nudenet")
    stash, people, items = library
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": True, "framesPerScene": 2})

    run = run_plugin(stash, {"mode": "preview"}, timeout=300)

    assert run.error is None, run.stderr
    assert stash.mutation_count == 0
    found = {p["performer"] for row in run.output["items"] for p in row.get("performers", [])}
    assert found == {"Eileen", "Cameraman"}


# ---- the sidecar serves embeddings: recognition where dlib cannot be installed ----------------


def test_the_sidecar_serves_faces_and_a_plugin_without_dlib_identifies_through_it(library, tmp_path, monkeypatch):
    from tests.sidecar import sidecar

    stash, people, items = library
    with sidecar(tmp_path / "sidecar.log") as server:
        stash.set_plugin_settings(PLUGIN_ID, {"recognizePerformers": True, "framesPerScene": 2,
                                              "faceServerUrl": server.url})  # fmt: skip
        imports.without(monkeypatch, ["dlib", "face_recognition_models"])
        run = run_plugin(stash, {"mode": "identify_performers"}, timeout=300)
        assert run.error is None, run.stderr
        assert "POST /faces" in server.log()
    assert _cast_of(stash, items) == RECOGNISED


def test_the_sidecar_answers_faces_per_picture_and_refuses_a_broken_one(tmp_path):
    import base64

    import requests

    from tests.sidecar import sidecar

    with sidecar(tmp_path / "sidecar.log") as server:
        pictures = [faces.photo_jpeg("astronaut"), faces.photo_jpeg("coffee")]
        body = {"images": [base64.b64encode(p).decode() for p in pictures]}
        answer = requests.post(f"{server.url}/faces", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        her, cup = answer.json()["faces"]
        assert len(her) == 1 and len(her[0]["embedding"]) == 128 and cup == []
        broken = requests.post(f"{server.url}/faces", json={"images": [base64.b64encode(b"nope").decode()]}, timeout=60)
        assert broken.status_code == 422


def test_with_a_gateway_tags_come_from_it_and_faces_are_still_recognised_locally(library, model):
    stash, people, items = library
    configure(stash, model, recognizePerformers=True, framesPerScene=2)

    run = run_plugin(stash, {"mode": "tag_images"}, timeout=300)

    assert run.error is None, run.stderr
    assert model.requests, "the tags came from the gateway"
    assert _cast_of(stash, items)["her image"] == {"Eileen"}
    assert _cast_of(stash, items)["his image"] == {"Cameraman"}
    assert _cast_of(stash, items)["cat"] == set()


def test_a_match_between_the_review_floor_and_the_threshold_is_a_performer_suggestion(library):
    stash, people, items = library
    stash.set_plugin_settings(PLUGIN_ID, {"provider": "local", "recognizePerformers": True, "performerThreshold": 95,
                                          "performerReviewConfidence": 50})  # fmt: skip
    kind, her_image = items["her image"]

    assert run_plugin(stash, {"mode": "tag_images"}, timeout=300).error is None
    assert stash.performers_of(kind, her_image) == set() and "AI_Review" in stash.tags_of_image(her_image)

    listed = run_plugin(stash, {"mode": "review_list"}).output
    [item] = [i for i in listed["items"] if i["id"] == her_image]
    assert [s["performer"] for s in item["suggestions"] if s.get("kind") == "performer"] == ["Eileen"]
    decided = run_plugin(stash, {"mode": "review_decide", "kind": kind, "id": her_image,
                                 "accept": [{"kind": "performer", "id": people["her"]}]})  # fmt: skip
    assert decided.error is None and decided.output["performers_accepted"] == ["Eileen"]
    assert stash.performers_of(kind, her_image) == {"Eileen"}


def test_a_performer_image_with_several_faces_keeps_the_largest_and_says_so(tmp_path):
    from PIL import Image

    her = media.photo("astronaut").convert("RGB")
    pair = Image.new("RGB", (her.width + her.width // 2, her.height))
    pair.paste(her, (0, 0))
    pair.paste(her.resize((her.width // 2, her.height // 2)), (her.width, 0))
    with FakeStash() as stash:
        stash.add_performer("Twice", faces.jpeg(pair))
        run = run_plugin(stash, {"mode": "index_performers"}, timeout=300)
    assert run.output == {"performers": 1, "several_faces": 1, "learned": 0}, run.stderr
    assert any("'Twice'" in line and "kept the largest" in line for line in run.log_lines())
