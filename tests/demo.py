"""Demo: the real "Tag untagged" run against the bundled Stash-compatible server.

By default the plugin uses its built-in local model (``provider: local``, NudeNet on CPU) on
real photographs from scikit-image's bundled samples (loaded at run time) and a video made
from one of them with ffmpeg. ``--provider test`` instead generates a library of solid-colour
videos and images (one inside a zip, one corrupt video) and tags it through the bundled
OpenAI-compatible test model. Either way the plugin starts exactly as Stash starts it
(``python {pluginDir}/ai_tagger`` fed the stdin JSON) and a before/after table is printed.

    python -m tests.demo [--mode preview] [--provider local|test]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from ai_tagger.decide.decision import percent
from tests import faces, media, runner
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

REPO = Path(__file__).resolve().parents[1]


def seed_photos(stash: FakeStash, folder: Path) -> list[tuple[str, str, str]]:
    """Real photographs and a 20 s video of one, plus an item the user tagged already; two
    performers whose images are altered copies (mirrored, smaller, darker) of the astronaut's and
    the cameraman's photographs, for face recognition."""
    stash.add_performer("Eileen Collins", faces.jpeg(faces.altered("astronaut")))
    stash.add_performer("The Cameraman", faces.jpeg(faces.altered("camera")))
    favourite = stash.add_tag("Favourite")
    what = {"astronaut": "photo: astronaut", "camera": "photo: cameraman", "chelsea": "photo: cat",
            "coffee": "photo: cup of coffee"}  # fmt: skip
    paths = {name: media.make_photo(folder / f"{name}.png", name) for name in media.PHOTOS}
    rows = [("image", stash.add_image(paths[name]), what[name]) for name in media.PHOTOS]
    video = media.make_still_video(folder / "astronaut.mp4", paths["astronaut"], seconds=20)
    rows.append(("scene", stash.add_scene(video), "20 s video of the astronaut"))
    mine = media.make_still_video(folder / "mine.mp4", paths["camera"], seconds=5)
    rows.append(("scene", stash.add_scene(mine, tag_ids=[favourite]), "already tagged by the user"))
    rows.append(("scene", stash.add_scene(media.make_corrupt(folder / "broken.mp4"), duration=30), "corrupt video"))
    return rows


def seed_colours(stash: FakeStash, folder: Path) -> list[tuple[str, str, str]]:
    """A library with user tags and untagged media; returns (kind, id, description) rows."""
    crimson = stash.add_tag("Crimson", aliases=["Red"])
    stash.add_tag("Outdoors", aliases=["Outside"])
    favourite = stash.add_tag("Favourite")
    sunset = media.make_video(folder / "sunset.mp4", ["red", "yellow", "red"])
    park = media.make_video(folder / "park.mp4", ["green", "green", "blue"])
    mine = media.make_video(folder / "mine.mp4", ["blue"])
    rotated = media.make_image(folder / "rotated.jpg", "green", other="green", exif_orientation=6)
    rows = []
    rows.append(("scene", stash.add_scene(sunset), "red/yellow video"))
    rows.append(("scene", stash.add_scene(park), "green/blue video"))
    rows.append(("scene", stash.add_scene(mine, tag_ids=[favourite, crimson]), "already tagged by the user"))
    rows.append(("scene", stash.add_scene(media.make_corrupt(folder / "broken.mp4"), duration=30), "corrupt video"))
    rows.append(("image", stash.add_image(media.make_image(folder / "lake.jpg", "blue")), "blue photo"))
    rows.append(("image", stash.add_image(rotated), "EXIF-rotated photo"))
    inner = media.make_image(folder / "beach.png", "yellow")
    archive = media.make_zip(folder / "holiday.zip", {"beach.png": inner})
    rows.append(("image", stash.add_image("beach.png", zip_path=archive), "photo inside a zip"))
    return rows


def tags_of(stash: FakeStash, kind: str, item_id: str) -> str:
    names = stash.tags_of_scene(item_id) if kind == "scene" else stash.tags_of_image(item_id)
    return ", ".join(sorted(names)) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = ["tag_untagged", "tag_scenes", "tag_images", "preview"]
    parser.add_argument("--mode", default="tag_untagged", choices=modes)
    parser.add_argument(
        "--provider",
        default="local",
        choices=["local", "test"],
        help="local: the built-in model on real photos (default); test: the bundled OpenAI-compatible test model",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ai-tagger-demo-") as tmp, FakeStash() as stash, ExitStack() as stack:
        folder = Path(tmp)
        if args.provider == "local":
            rows = seed_photos(stash, folder)
            settings = {"provider": "local", "minConfidence": 50, "recognizePerformers": True}
        else:
            model = stack.enter_context(FakeModel())
            rows = seed_colours(stash, folder)
            settings = {"gatewayUrl": model.base_url, "apiKey": model.api_key, "model": model.models[0],
                        "minConfidence": 50}  # fmt: skip
        stash.set_plugin_settings("ai_tagger", settings)
        before = {(kind, item_id): tags_of(stash, kind, item_id) for kind, item_id, _ in rows}
        print(f"Running mode {args.mode!r} as Stash would: {sys.executable} {REPO / 'ai_tagger'}\n")
        done = runner.run(stash.server_connection(), {"mode": args.mode}, cwd=tmp)
        for line in done.stderr.splitlines():
            if line.startswith("\x01") and line[1] in "iwe":
                print(f"  [{ {'i': 'info', 'w': 'warn', 'e': 'error'}[line[1]] }] {line[3:]}")
        result = done.result
        output = result["output"] or {}
        scores = {
            (row["kind"], row["id"]): ", ".join(f"{c['tag']} {percent(c['score'])}" for c in row.get("candidates", []))
            for row in output.get("items", [])
        }
        found = {
            (row["kind"], row["id"]): ", ".join(
                f"{p['performer']} {p['confidence']:.2f}" for p in row.get("performers", []) if p["outcome"] == "apply"
            )
            for row in output.get("items", [])
        }
        width = max(len(d) for _, _, d in rows)
        print(f"\n{'item':<10} {'what':<{width}}  {'before':<20} {'after':<40} {'performers':<22} model said (score)")
        for kind, item_id, description in rows:
            after = tags_of(stash, kind, item_id)
            said = scores.get((kind, item_id), "")
            was = before[(kind, item_id)]
            people = ", ".join(sorted(stash.performers_of(kind, item_id))) or found.get((kind, item_id)) or "-"
            print(f"{kind + ' ' + item_id:<10} {description:<{width}}  {was:<20} {after:<40} {people:<22} {said}")
        tagged = "would tag" if args.mode == "preview" else "tagged"
        print(
            f"\nprocessed {output.get('processed', 0)}, {tagged} {output.get('tagged', 0)}, "
            f"errored {output.get('errored', 0)}, model calls {output.get('gateway_calls', 0)}, "
            f"tokens {output.get('tokens', {}).get('total', 0)}, performers {output.get('performers_applied', 0)}"
            + (f"; error: {result['error']}" if result["error"] else "")
        )
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
