"""Features meeting in one run (issues 22, 24, 25, 26): galleries, images and scenes, descriptions and
speech all on at once, then preview, reapply, undo, remove, report and review over what that run did.

Run as Stash runs the plugin (a subprocess fed the stdin JSON) against the bundled Stash server and
the pixel model, which also transcribes; every feature's own tests cover it alone, these cover the seams.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import media
from tests.conftest import PLUGIN_ID, gateway_settings, run_plugin
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash
from tests.speech_media import SENTENCE, espeak, make_talking_video

ASR = "whisper-1"
ALL_ON = {"writeDetails": True, "transcribeAudio": True, "asrModel": ASR, "tagGalleries": True,
          "framesPerScene": 3, "imagesPerGallery": 3}
needs_espeak = pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed (.ci/setup installs it)")


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel(models=["vision-test", ASR], retry_after=0.05, transcript=SENTENCE) as server:
        yield server


@pytest.fixture
def stash(model: FakeModel) -> Iterator[FakeStash]:
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **ALL_ON))
        yield server


def ok(run: Any) -> dict[str, Any]:
    assert run.returncode == 0 and run.error is None, run.stderr
    return run.output


def details(stash: FakeStash, kind: str, item_id: str) -> str | None:
    with stash.lock:
        table = {"scene": stash.scenes, "image": stash.images, "gallery": stash.galleries}[kind]
        return table[int(item_id)]["details"]


def tags(stash: FakeStash, kind: str, item_id: str) -> set[str]:
    return {"scene": stash.tags_of_scene, "image": stash.tags_of_image, "gallery": stash.tags_of_gallery}[kind](item_id)


def writes(stash: FakeStash) -> list[tuple[str, dict[str, Any]]]:
    with stash.lock:
        return [(op, v) for op, v in stash.operations if op.startswith("Bulk") or op.startswith("Review")]


class Library:
    def __init__(self, stash: FakeStash, tmp_path: Path, *, talking: bool = True) -> None:
        if talking:
            self.talking = stash.add_scene(make_talking_video(tmp_path / "talking.mp4", ["red", "red", "red"]))
        self.silent = stash.add_scene(media.make_video(tmp_path / "silent.mp4", ["green", "green"]))
        self.image = stash.add_image(media.make_image(tmp_path / "blue.png", "blue"))
        folder = tmp_path / "set"
        for index in range(4):
            media.make_image(folder / f"{index:03d}.png", "red", size=(48, 32))
        self.gallery = stash.add_gallery(folder)
        self.members = [str(i) for i in stash.gallery(self.gallery)["image_ids"]]

    def items(self) -> list[tuple[str, str]]:
        scenes = [("scene", s) for s in (getattr(self, "talking", None), self.silent) if s]
        return [*scenes, ("image", self.image), *(("image", m) for m in self.members), ("gallery", self.gallery)]


@pytest.fixture
def library(stash: FakeStash, tmp_path: Path) -> Library:
    if espeak() is None:
        pytest.skip("espeak-ng is not installed (.ci/setup installs it)")
    return Library(stash, tmp_path)


def test_everything_on_tags_each_kind_once_with_descriptions_and_speech_for_scenes_with_sound(stash, model, library):
    stash.reset_log()
    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    items = library.items()
    per_item: dict[tuple[str, str], int] = {}
    for op, variables in writes(stash):
        kind = {"BulkSceneUpdate": "scene", "BulkImageUpdate": "image", "BulkGalleryUpdate": "gallery"}.get(op)
        assert kind, op
        for item_id in variables["input"]["ids"]:
            per_item[(kind, str(item_id))] = per_item.get((kind, str(item_id)), 0) + 1
    assert per_item == {item: 1 for item in items}, "one mutation per item"
    assert tags(stash, "scene", library.talking) == {"Red", "AI_Tagged"}
    assert tags(stash, "gallery", library.gallery) == {"Red", "AI_Tagged"}
    described = [item for item in items if item[0] != "gallery"]
    for kind, item_id in described:
        assert details(stash, kind, item_id), (kind, item_id)
    # The gallery's members were all answered as images in this run: its roll-up costs no call, so
    # there is no request to carry a description (issue 26's "cached members cost nothing" wins).
    assert model.completion_count == len(items) - 1
    [upload] = model.transcriptions
    assert upload["model"] == ASR
    rows = {(row["kind"], row["id"]): row for row in output["items"]}
    assert rows[("scene", library.talking)]["speech"].startswith("The quick brown fox")
    assert [key for key, row in rows.items() if "speech" in row] == [("scene", library.talking)]
    assert output["tagged"] == len(items) and output["errored"] == 0
    assert output["details_written"] == len(described)


def test_preview_with_everything_on_writes_nothing_and_shows_descriptions_speech_and_galleries(stash, model, library):
    stash.reset_log()
    output = ok(run_plugin(stash, {"mode": "preview"}))

    assert stash.mutation_count == 0 and writes(stash) == []
    rows = {(row["kind"], row["id"]): row for row in output["items"]}
    assert set(rows) == set(library.items())
    assert rows[("scene", library.talking)]["speech"].startswith("The quick brown fox")
    assert rows[("scene", library.talking)]["description"]
    assert rows[("image", library.image)]["description"]
    assert {c["tag"] for c in rows[("gallery", library.gallery)]["candidates"]} >= {"Red"}
    for kind, item_id in library.items():
        assert details(stash, kind, item_id) is None and tags(stash, kind, item_id) == set()


def test_preview_then_run_pays_once_for_everything(stash, model, library):
    ok(run_plugin(stash, {"mode": "preview"}))
    calls, heard = model.completion_count, len(model.transcriptions)

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert (model.completion_count, len(model.transcriptions)) == (calls, heard)
    assert output["gateway_calls"] == 0 and output["tagged"] == len(library.items())


def test_reapply_after_everything_on_makes_no_gateway_call_and_keeps_one_write_per_item(stash, model, library):
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    ok(run_plugin(stash, {"mode": "undo_last"}))
    calls, heard = model.completion_count, len(model.transcriptions)
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "reapply"}))

    assert (model.completion_count, len(model.transcriptions)) == (calls, heard), "no gateway call"
    assert output.get("gateway_calls", 0) == 0
    for kind, item_id in library.items():
        assert "AI_Tagged" in tags(stash, kind, item_id), (kind, item_id)
    assert tags(stash, "scene", library.talking) == {"Red", "AI_Tagged"}
    assert details(stash, "scene", library.talking) and details(stash, "image", library.image)
    updated = [v["input"]["ids"] for op, v in writes(stash) if op.startswith("Bulk")]
    assert sorted(len(ids) for ids in updated) == [1] * len(library.items())


def users_own(stash: FakeStash, library: Library) -> dict[tuple[str, str], Any]:
    """The user's own tag, details and performer on some items, set after the run (their edits win)."""
    stash.add_tag("Mine")
    stash.add_performer("Alice")
    for kind, item_id in (("scene", library.silent), ("image", library.image), ("gallery", library.gallery)):
        stash.set_item_tags(kind, item_id, tags(stash, kind, item_id) | {"Mine"})
        stash.set_item_performers(kind, item_id, ["Alice"])
    stash.set_item_details("gallery", library.gallery, "My own set.")
    stash.set_item_details("image", library.image, "My own words.")
    return {}


@pytest.mark.parametrize("mode", ["undo_last", "remove_ai"])
def test_undo_after_everything_on_removes_all_it_added_and_keeps_the_users_own(stash, model, library, mode):
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    users_own(stash, library)
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": mode}))

    for kind, item_id in library.items():
        own = {"Mine"} if (kind, item_id) in {("scene", library.silent), ("image", library.image),
                                              ("gallery", library.gallery)} else set()
        assert tags(stash, kind, item_id) == own, (kind, item_id)
        assert not details(stash, kind, item_id) or details(stash, kind, item_id).startswith("My own"), (kind, item_id)
    assert details(stash, "image", library.image) == "My own words."
    assert details(stash, "gallery", library.gallery) == "My own set."
    for kind, item_id in (("scene", library.silent), ("image", library.image), ("gallery", library.gallery)):
        assert stash.performers_of(kind, item_id) == {"Alice"}
    assert output["removed"]["details"] == len(library.items()) - 2  # gallery had none, image now the user's
    per_item = [v["input"]["ids"] for op, v in writes(stash) if op.startswith("Bulk") or op.startswith("Review")]
    assert len(per_item) == len(library.items()), "one update per item"
    assert model.completion_count and not any(op == "BulkSceneUpdate" and "tag_ids" in v["input"]
                                              and v["input"]["tag_ids"]["mode"] == "ADD" for op, v in writes(stash))


def test_report_after_everything_on_counts_every_kind(stash, model, library):
    ok(run_plugin(stash, {"mode": "tag_untagged"}))
    stash.reset_log()

    output = ok(run_plugin(stash, {"mode": "report"}))

    assert stash.mutation_count == 0
    text = str(output)
    assert "Red" in text
    [run] = [r for r in output["runs"] if r.get("mode") == "tag_untagged"] if "runs" in output else [None]
    assert run is not None, output
    assert run["items"] == len(library.items()), run


def test_review_queue_with_a_gallery_and_a_scene_lists_and_decides_both(stash, model, tmp_path):
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **{**ALL_ON, "transcribeAudio": False,
                                                                    "minConfidence": 95, "reviewConfidence": 30,
                                                                    "framesPerScene": 4}))
    scene = stash.add_scene(media.make_video(tmp_path / "rgbw.mp4", ["red", "green", "blue", "white"],
                                             seconds_per_colour=2), title="Four colours")
    folder = tmp_path / "set"
    for index, colour in enumerate(["red", "red", "blue"]):
        media.make_image(folder / f"{index:03d}.png", colour, size=(48, 32))
    gallery = stash.add_gallery(folder, title="set")
    ok(run_plugin(stash, {"mode": "tag_scenes"}))
    ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert "AI_Review" in stash.tags_of_scene(scene) and "AI_Review" in stash.tags_of_gallery(gallery)

    listed = ok(run_plugin(stash, {"mode": "review_list"}))

    by_id = {(i["kind"], i["id"]): i for i in listed["items"]}
    assert set(by_id) == {("scene", scene), ("gallery", gallery)}
    assert by_id[("gallery", gallery)]["images"] and by_id[("scene", scene)]["suggestions"]
    stash.reset_log()
    rest = [s["tag"] for s in by_id[("gallery", gallery)]["suggestions"] if s["tag"] != "Red"]
    done = ok(run_plugin(stash, {"mode": "review_decide", "kind": "gallery", "id": gallery, "accept": ["Red"],
                                 "reject": rest}))
    assert done["accepted"] == ["Red"] and stash.tags_of_gallery(gallery) == {"AI_Tagged", "Red"}
    names = [s["tag"] for s in by_id[("scene", scene)]["suggestions"]]
    done = ok(run_plugin(stash, {"mode": "review_decide", "kind": "scene", "id": scene, "reject": names}))
    assert done["pending"] == 0 and stash.tags_of_scene(scene) == {"AI_Tagged"}
    assert details(stash, "scene", scene) and details(stash, "gallery", gallery), "decisions keep the descriptions"
    assert ok(run_plugin(stash, {"mode": "review_list"}))["items"] == []

    ok(run_plugin(stash, {"mode": "remove_ai"}))
    assert stash.tags_of_scene(scene) == set()
    assert stash.tags_of_gallery(gallery) == {"Red"}, "a tag the user accepted is the user's decision"
    assert not details(stash, "scene", scene) and not details(stash, "gallery", gallery)


@needs_espeak
def test_markers_from_dense_sampling_with_speech_and_descriptions_then_undo_takes_all_back(stash, model, tmp_path):
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **ALL_ON, frameInterval=2, markerTags="*",
                                                          minConfidence=40))
    scene = stash.add_scene(make_talking_video(tmp_path / "halves.mp4", ["red", "blue"], seconds_per_colour=10))
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    output = ok(run)
    assert {"Red", "Water"} <= stash.tags_of_scene(scene)
    assert [m["tag"] for m in stash.markers_of_scene(scene)] == ["Red", "Water"]
    assert len(model.transcriptions) == 1, "one transcript per scene, however many requests its frames need"
    assert model.requests and all(SENTENCE in r["text"] for r in model.requests)
    assert details(stash, "scene", scene)
    assert len([op for op, _ in writes(stash) if op == "BulkSceneUpdate"]) == 1
    [row] = output["items"]
    assert row["speech"].startswith("The quick") and row["description"]

    ok(run_plugin(stash, {"mode": "undo_last"}))
    assert stash.tags_of_scene(scene) == set() and stash.markers_of_scene(scene) == []
    assert not details(stash, "scene", scene)


@pytest.mark.parametrize("exact", [False, True])
def test_keyframe_or_exact_sampling_with_galleries_and_descriptions_tags_every_kind(stash, model, tmp_path, exact):
    settings = {**ALL_ON, "transcribeAudio": False, "framesPerScene": 4, "minConfidence": 42}
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **settings, exactFrames=exact))
    video = media.make_video(tmp_path / "four.mp4", ["red", "green", "blue", "yellow"], seconds_per_colour=2.5)
    scene = stash.add_scene(video)
    folder = tmp_path / "set"
    for index in range(5):
        media.make_image(folder / f"{index:03d}.png", "blue", size=(48, 32))
    gallery = stash.add_gallery(folder)

    output = ok(run_plugin(stash, {"mode": "tag_galleries"}))
    assert stash.tags_of_gallery(gallery) == {"Water", "AI_Tagged"} and details(stash, "gallery", gallery)
    assert output["items"][0]["description"] and model.images_received == 3
    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert "Red" in stash.tags_of_scene(scene) and details(stash, "scene", scene)
    assert output["errored"] == 0
    assert stash.tags_of_gallery(gallery) == {"Water", "AI_Tagged"}, "a tagged gallery is not tagged again"


def test_the_create_hooks_still_queue_one_job_with_every_feature_on(stash, model):
    from tests.test_hooks import assert_nothing_written, hook_args, our_jobs

    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **ALL_ON, exactFrames=True, frameInterval=2,
                                                          markerTags="*"))
    for hook_type in ("Scene.Create.Post", "Image.Create.Post", "Scene.Create.Post"):
        run = run_plugin(stash, hook_args("1", hook_type))
        assert run.returncode == 0 and run.error is None, run.stderr

    [job] = our_jobs(stash)
    assert job["task_name"] == "Tag untagged scenes and images" and job["args_map"] == {"mode": "tag_untagged"}
    assert_nothing_written(stash, model)
    assert model.transcriptions == []


def test_a_description_model_describes_galleries_too_and_a_preview_pays_for_it_once(stash, model, tmp_path):
    """Regression: with ``descriptionModel`` the describer asked only items with a file of their own, so
    galleries (which have none) got no description while the vision model's own request gave them one."""
    model.models = ["vision-test", ASR, "writer"]
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **ALL_ON, descriptionModel="writer"))
    library = Library(stash, tmp_path, talking=False)
    ok(run_plugin(stash, {"mode": "preview"}))
    asked = len(model.requests)

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert len(model.requests) == asked, "the preview's answers, descriptions included, were cached"
    for kind, item_id in library.items():
        assert details(stash, kind, item_id), (kind, item_id)
    assert output["details_written"] == len(library.items())
    writer = [r for r in model.requests if r.get("model") == "writer"]
    assert len(writer) == len(library.items())


def test_a_gallery_rolled_up_while_its_images_are_written_records_no_rejection_on_them(stash, model, tmp_path):
    """Regression: the gallery read its members before the image pass (another worker) wrote them; the
    roll-up then took our own fresh writes for tags and descriptions the user had removed, recorded them as
    rejections for good, and left the gallery without the tag every member shows."""
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **{**ALL_ON, "transcribeAudio": False}))
    folder = tmp_path / "set"
    for index in range(2):
        media.make_image(folder / f"{index:03d}.png", "red", size=(48, 32))
    gallery = stash.add_gallery(folder)
    model.latency = 0.3  # the images' answers and writes come after the gallery read its members...
    plain = stash.execute_request

    def slow_member_reads(query: str, variables: Any = None, operation_name: Any = None) -> Any:
        answer = plain(query, variables, operation_name)
        if "galleries" in ((variables or {}).get("image_filter") or {}):
            time.sleep(1.0)  # ...and before it decides (a member read answered late, as on a busy Stash)
        return answer

    stash.execute_request = slow_member_reads  # type: ignore[method-assign]

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert stash.tags_of_gallery(gallery) == {"Red", "AI_Tagged"}
    assert output["errored"] == 0
    report = ok(run_plugin(stash, {"mode": "report"}))
    assert all(row["rejected"] == 0 for row in report["tags"]), report["tags"]
    stash.execute_request = plain  # type: ignore[method-assign]
    ok(run_plugin(stash, {"mode": "undo_last"}))
    ok(run_plugin(stash, {"mode": "reapply"}))
    for member in stash.gallery(gallery)["image_ids"]:
        assert stash.tags_of_image(member) == {"Red", "AI_Tagged"}, "no false rejection keeps Red off"
        assert details(stash, "image", str(member)), "nor the description"


def test_tag_untagged_takes_galleries_by_default_and_reads_a_zipped_one_through_stash(stash, model, tmp_path):
    """``tagGalleries`` left unset (Stash sends no key until the user changes it) means on."""
    settings = {key: value for key, value in ALL_ON.items() if key != "tagGalleries"}
    stash.set_plugin_settings(PLUGIN_ID, gateway_settings(model, **{**settings, "transcribeAudio": False}))
    zip_path = tmp_path / "set.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for index in range(3):
            archive.write(media.make_image(tmp_path / f"z{index}.png", "blue", size=(48, 32)), f"{index:03d}.png")
    gallery = stash.add_gallery(zip_path=zip_path)

    output = ok(run_plugin(stash, {"mode": "tag_untagged"}))

    assert stash.tags_of_gallery(gallery) == {"Water", "AI_Tagged"}
    assert output["errored"] == 0 and model.completion_count == 3, "one call per member image, none for the gallery"
    assert all(details(stash, "image", str(member)) for member in stash.gallery(gallery)["image_ids"])
