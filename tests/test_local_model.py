"""The built-in local model (``provider: local``): NudeNet's real detector on real photographs.

End-to-end tests run the plugin as Stash does against the bundled Stash server with no gateway
at all; the photographs are scikit-image's bundled samples, loaded at run time. The mapping and
the frame aggregation are pure functions, tested on recorded detector output.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from PIL import Image

from ai_tagger.analyze.gateway.base import Candidate, TagRequest, Usage
from ai_tagger.analyze.local import detector
from ai_tagger.analyze.local.detector import FLOOR, Label, aggregate, tag_name
from ai_tagger.decide.decision import CREATE, NOT_ALLOWED, Policy, decide
from ai_tagger.decide.rules import Rules, load_rules
from ai_tagger.settings import LOCAL_MODELS, Settings, SettingsError
from ai_tagger.stash.vocabulary import Vocabulary
from ai_tagger.store.cache import Cache
from tests import imports, media
from tests.conftest import PLUGIN_ID, REPO, configure, run_plugin
from tests.servers.stash_server import FakeStash

ISSUE_TABLE = {
    "FACE_FEMALE": "Female Face",
    "FACE_MALE": "Male Face",
    "FEMALE_BREAST_EXPOSED": "Exposed Breasts",
    "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
    "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
    "MALE_BREAST_EXPOSED": "Exposed Male Chest",
    "BUTTOCKS_EXPOSED": "Exposed Buttocks",
    "ANUS_EXPOSED": "Exposed Anus",
    "FEET_EXPOSED": "Bare Feet",
}
ISSUE_OPT_IN = {
    "FEMALE_BREAST_COVERED": "Covered Breasts",
    "FEMALE_GENITALIA_COVERED": "Covered Female Genitalia",
    "BUTTOCKS_COVERED": "Covered Buttocks",
    "ANUS_COVERED": "Covered Anus",
    "FEET_COVERED": "Covered Feet",
    "ARMPITS_COVERED": "Covered Armpits",
    "ARMPITS_EXPOSED": "Exposed Armpits",
    "BELLY_COVERED": "Covered Belly",
    "BELLY_EXPOSED": "Exposed Belly",
}

# NudeNet's output for a six-frame scene. Frames 1, 3 and 5 are recorded from the real detector
# on the astronaut, the cat and the cameraman; the others add what aggregation must handle: a
# second sighting, an opt-in class, a score under the floor, two boxes of one class in a frame,
# and a class a future model might add.
ASTRONAUT = [{"class": "FACE_FEMALE", "score": 0.7516885995864868, "box": [172, 82, 102, 97]}]
CAT: list[dict] = []
CAMERAMAN = [{"class": "FACE_MALE", "score": 0.5896854400634766, "box": [181, 128, 85, 69]}]
RECORDED_SCENE = [
    ASTRONAUT,
    [{"class": "FACE_FEMALE", "score": 0.74, "box": [168, 80, 104, 99]},
     {"class": "BELLY_EXPOSED", "score": 0.47, "box": [150, 300, 120, 90]}],
    CAT,
    [{"class": "FACE_FEMALE", "score": 0.22, "box": [10, 10, 30, 30]},
     {"class": "FEET_EXPOSED", "score": 0.66, "box": [40, 400, 80, 50]},
     {"class": "FEET_EXPOSED", "score": 0.31, "box": [140, 410, 70, 40]}],
    CAMERAMAN,
    [{"class": "SOMETHING_NEW", "score": 0.99, "box": [0, 0, 1, 1]}],
]  # fmt: skip


# --- names and aggregation (pure) -----------------------------------------------------------


def test_every_nudenet_class_has_the_issue_tag_name():
    from nudenet import nudenet

    assert dict(detector.NAMES) == ISSUE_TABLE
    assert dict(detector.OPT_IN_NAMES) == ISSUE_OPT_IN
    assert set(ISSUE_TABLE) | set(ISSUE_OPT_IN) == set(getattr(nudenet, "__labels"))
    assert tag_name("FACE_MALE") == ("Male Face", False)
    assert tag_name("BELLY_COVERED") == ("Covered Belly", True)
    assert tag_name("SOMETHING_NEW") is None


def test_frames_aggregate_to_best_score_and_the_frames_that_show_it():
    labels = aggregate(RECORDED_SCENE)

    assert labels == [
        Label("Female Face", 0.7516885995864868, (1, 2), False),  # frame 4's 0.22 is under the detector's floor
        Label("Bare Feet", 0.66, (4,), False),  # two boxes in one frame count once
        Label("Male Face", 0.5896854400634766, (5,), False),
        Label("Exposed Belly", 0.47, (2,), True),
    ]
    assert FLOOR == 0.25
    assert aggregate([]) == [] and aggregate([CAT, CAT]) == []
    assert aggregate([CAMERAMAN]) == [Label("Male Face", 0.5896854400634766, (1,), False)]


def test_aggregated_scene_scores_through_the_usual_decision():
    candidates = [Candidate(name=x.name, confidence=x.score, frames=x.frames, opt_in=x.opt_in)
                  for x in aggregate(RECORDED_SCENE)]  # fmt: skip
    policy = Policy(threshold=0.3, max_tags=10, only_existing=False)

    decision = decide(candidates, 6, Vocabulary([]), policy)

    scores = {v.name: round(v.score, 3) for v in decision.verdicts}
    assert scores["Female Face"] == round(0.7516885995864868 * (2 / 6) ** 0.5, 3)  # confidence x sqrt(shown / sent)
    assert [v.label for v in decision.applied] == ["Female Face"]
    assert {v.name: v.outcome for v in decision.verdicts}["Exposed Belly"] == NOT_ALLOWED


@pytest.mark.parametrize(
    ("allow", "outcome"),
    [
        (None, NOT_ALLOWED),  # no allow list: opt-in names stay held back
        (("*",), NOT_ALLOWED),  # a catch-all opts in to nothing
        (("*", "Covered Belly"), CREATE),
        (("covered_*",), CREATE),  # a pattern with a literal part names them
        (("Exposed Belly",), NOT_ALLOWED),  # another opt-in name does not count
    ],
)
def test_opt_in_names_apply_only_when_the_allow_list_names_them(allow, outcome):
    covered = Candidate(name="Covered Belly", confidence=0.9, opt_in=True)
    face = Candidate(name="Female Face", confidence=0.9)
    policy = Policy(threshold=0.5, max_tags=10, only_existing=False, rules=Rules(allow=allow))

    verdicts = {v.name: v for v in decide([covered, face], 1, Vocabulary([]), policy).verdicts}

    assert verdicts["Covered Belly"].outcome == outcome
    if outcome == NOT_ALLOWED and allow != ("Exposed Belly",):
        assert verdicts["Covered Belly"].rule == "opt-in: name it in allow"


def test_opt_in_mark_survives_the_cache(tmp_path):
    """Re-apply decides from cached answers: a held-back name must stay held back there."""
    cache = Cache(tmp_path / "cache.sqlite3")
    cache.put("k", "fp", [Candidate(name="Covered Feet", confidence=0.7, opt_in=True)], 1, Usage())
    try:
        assert cache.get("k").candidates[0].opt_in is True
    finally:
        cache.close()


def test_shipped_local_rules_map_names_and_opt_in():
    rules = load_rules(REPO / "rules.local.example.yml")
    policy = Policy(threshold=0.5, max_tags=10, only_existing=False, rules=rules)
    candidates = [
        Candidate(name="Exposed Breasts", confidence=0.8),
        Candidate(name="Female Face", confidence=0.9),
        Candidate(name="Covered Breasts", confidence=0.7, opt_in=True),
        Candidate(name="Covered Belly", confidence=0.9, opt_in=True),
    ]

    outcomes = {v.label: v.outcome for v in decide(candidates, 1, Vocabulary([]), policy).verdicts}

    assert outcomes == {"Topless": CREATE, "Female Face": "blocked", "Lingerie": CREATE, "Covered Belly": NOT_ALLOWED}


# --- settings -------------------------------------------------------------------------------


def test_local_needs_no_gateway_and_defaults_to_its_detector():
    settings = Settings.from_stash({"provider": "local"})
    assert settings.model == "nudenet-320n" and settings.configured
    assert "None" not in settings.describe_model()
    assert LOCAL_MODELS == ("nudenet-320n",)


def test_unknown_local_model_is_a_settings_error():
    with pytest.raises(SettingsError, match="model.*nudenet-320n"):
        Settings.from_stash({"provider": "local", "model": "gpt-4o-mini"})


def test_detector_module_and_gateway_providers_import_no_heavy_package(tmp_path, monkeypatch):
    """Choosing a provider imports every provider module: the local one must stay light."""
    out = imports.record(monkeypatch, tmp_path / "modules.txt")
    code = ("from ai_tagger.analyze.gateway.base import provider_names; import ai_tagger.analyze.local.detector; "
            "provider_names()")

    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

    assert imports.top_level(out) & imports.HEAVY == set()


# --- end to end -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict[str, Path]:
    """The four photographs and a 20 s video of the astronaut, made once for this module."""
    folder = tmp_path_factory.mktemp("photos")
    files = {name: media.make_photo(folder / f"{name}.png", name) for name in media.PHOTOS}
    files["video"] = media.make_still_video(folder / "astronaut.mp4", files["astronaut"], seconds=20)
    return files


@pytest.fixture
def local_stash() -> Iterator[FakeStash]:
    """A Stash server set to the local model: no gateway URL, key or model anywhere."""
    with FakeStash() as server:
        server.set_plugin_settings(PLUGIN_ID, {"provider": "local", "minConfidence": 50})
        yield server


def test_local_model_tags_real_photographs_and_a_video(local_stash, library):
    stash = local_stash
    images = {name: stash.add_image(library[name]) for name in media.PHOTOS}
    scene = stash.add_scene(library["video"])

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 0 and run.error is None, run.stderr
    assert stash.tags_of_image(images["astronaut"]) == {"Female Face", "AI_Tagged"}
    assert stash.tags_of_image(images["camera"]) == {"Male Face", "AI_Tagged"}
    assert stash.tags_of_image(images["chelsea"]) == {"AI_Tagged"}
    assert stash.tags_of_image(images["coffee"]) == {"AI_Tagged"}
    assert stash.tags_of_scene(scene) == {"Female Face", "AI_Tagged"}
    [row] = [item for item in run.output["items"] if item["kind"] == "scene"]
    [face] = row["candidates"]
    assert face["frames"] == [1, 2, 3, 4, 5, 6] and face["score"] == face["confidence"] >= 0.5
    infos = run.log_lines("i")
    assert sum("do not apply" in line for line in infos) == 1
    assert not any("None" in line for line in infos), infos


def test_missing_nudenet_ends_the_run_with_the_install_command(local_stash, library, monkeypatch):
    stash = local_stash
    stash.add_image(library["astronaut"])
    imports.without(monkeypatch, ["nudenet", "onnxruntime"])
    stash.reset_log()

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.returncode == 1
    assert f"{sys.executable} -m pip install -r {REPO / 'requirements-local.txt'}" in run.error
    assert stash.mutation_count == 0
    assert len(run.log_lines("e")) == 1 and "Traceback" not in run.stderr


def test_gateway_runs_never_import_the_local_model(stash, model, red_video, monkeypatch, tmp_path):
    stash.add_scene(red_video)
    configure(stash, model)
    out = imports.record(monkeypatch, tmp_path / "modules.txt")

    run = run_plugin(stash, {"mode": "tag_untagged"})

    assert run.output["tagged"] == 1
    assert imports.top_level(out) & imports.HEAVY == set()


def _sixteen_bit_png(path: Path) -> Path:
    import numpy

    grey = numpy.asarray(media.photo("camera"), dtype=numpy.uint16) * 257
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def _animated_gif(path: Path) -> Path:
    first = media.photo("astronaut")
    first.save(path, save_all=True, append_images=[first.rotate(90), first.rotate(180)], duration=200, loop=0)
    return path


def test_bad_input_tags_or_marks_only_that_item(local_stash, tmp_path):
    stash = local_stash
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (10_000, 10_000), (30, 120, 200)).save(tmp_path / "huge.png")
    images = {
        "zero-byte": tmp_path / "empty.jpg",
        "corrupt": media.make_corrupt(tmp_path / "corrupt.jpg"),
        "1x1": media.make_image(tmp_path / "tiny.png", "red", size=(1, 1)),
        "10000x10000": tmp_path / "huge.png",
        "single colour": media.make_image(tmp_path / "white.jpg", "white"),
        "CMYK": media.make_photo(tmp_path / "cmyk.jpg", "astronaut", mode="CMYK"),
        "16-bit PNG": _sixteen_bit_png(tmp_path / "camera16.png"),
        "animated GIF": _animated_gif(tmp_path / "astronaut.gif"),
    }
    ids = {what: stash.add_image(path) for what, path in images.items()}
    scene = stash.add_scene(media.make_video(tmp_path / "grey.mp4", [(128, 128, 128)], seconds_per_colour=4))

    run = run_plugin(stash, {"mode": "tag_untagged"}, timeout=300)

    assert run.returncode == 0 and run.error is None, run.stderr
    got = {what: stash.tags_of_image(item) for what, item in ids.items()}
    assert got == {
        "zero-byte": {"AI_Errored"},
        "corrupt": {"AI_Errored"},
        "1x1": {"AI_Tagged"},
        "10000x10000": {"AI_Tagged"},
        "single colour": {"AI_Tagged"},
        "CMYK": {"Female Face", "AI_Tagged"},
        "16-bit PNG": {"Male Face", "AI_Tagged"},  # scaled to 8 bits, not clipped to white
        "animated GIF": {"Female Face", "AI_Tagged"},  # its first frame
    }
    assert stash.tags_of_scene(scene) == {"AI_Tagged"}
    errors = {item["id"]: item["error"] for item in run.output["items"] if item["status"] == "errored"}
    assert set(errors) == {ids["zero-byte"], ids["corrupt"]}
    assert all("cannot read image" in reason for reason in errors.values())


@responses.activate
def test_labels_contract_carries_the_opt_in_mark():
    """A sidecar serving this detector over ``labels`` keeps covered classes opt-in."""
    from ai_tagger.analyze.providers.labels import LabelsProvider

    body = {"labels": [{"name": "Covered Feet", "score": 0.8, "frames": [1], "opt_in": True},
                       {"name": "Bare Feet", "score": 0.7}]}  # fmt: skip
    responses.post("http://sidecar:8000/labels", json=body)
    provider = LabelsProvider(Settings.from_stash({"provider": "labels", "gatewayUrl": "http://sidecar:8000",
                                                   "model": "nudenet-320n"}))  # fmt: skip

    answer = provider.describe(TagRequest(kind="image", pictures=[b"\xff\xd8"]))

    assert [(c.name, c.opt_in) for c in answer.candidates] == [("Covered Feet", True), ("Bare Feet", False)]


def test_postprocessing_matches_nudenets_own(library):
    """The vectorised post-processing gives exactly NudeNet's boxes and scores, on the real
    model's output for each photograph and on the same output with every score times ten (many
    overlapping boxes for the non-maximum suppression to sort out)."""
    import numpy
    from nudenet import nudenet

    found = detector.Detector.load()
    for name in media.PHOTOS:
        blob, meta = found._prepare(1, library[name].read_bytes())
        output = found._session.run(None, {found._input: blob})[0]
        boosted = output.copy()
        boosted[:, 4:, :] = numpy.minimum(boosted[:, 4:, :] * 10, 1)
        x_ratio, y_ratio, x_pad, y_pad, width, height = meta
        for raw in (output, boosted):
            theirs = nudenet._postprocess([raw], x_pad, y_pad, x_ratio, y_ratio, width, height, 320, 320)
            assert found._postprocess(raw, meta) == theirs, name
        assert (boosted[0, 4:, :].max(axis=0) >= detector.PRE_FLOOR).sum() > 10, name  # NMS had work to do
