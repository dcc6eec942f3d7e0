"""Demo: the real "Tag untagged" run against the bundled Stash-compatible and model servers.

Generates a small library (videos with ffmpeg, images with Pillow, one inside a zip, one
corrupt video), seeds a few of the user's own tags, then starts the plugin exactly as Stash
does (``python {pluginDir}/ai_tagger`` fed the stdin JSON) and prints a before/after table.

    python -m tests.demo [--mode preview]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import media
from tests.servers.model_server import FakeModel
from tests.servers.stash_server import FakeStash

REPO = Path(__file__).resolve().parents[1]


def seed(stash: FakeStash, folder: Path) -> list[tuple[str, str, str]]:
    """A library with user tags and untagged media; returns (kind, id, description) rows."""
    crimson = stash.add_tag("Crimson", aliases=["Red"])
    stash.add_tag("Outdoors", aliases=["Outside"])
    favourite = stash.add_tag("Favourite")
    rows = []
    rows.append(("scene", stash.add_scene(media.make_video(folder / "sunset.mp4", ["red", "yellow", "red"])), "red/yellow video"))
    rows.append(("scene", stash.add_scene(media.make_video(folder / "park.mp4", ["green", "green", "blue"])), "green/blue video"))
    rows.append(("scene", stash.add_scene(media.make_video(folder / "mine.mp4", ["blue"]), tag_ids=[favourite, crimson]), "already tagged by the user"))
    rows.append(("scene", stash.add_scene(media.make_corrupt(folder / "broken.mp4"), duration=30), "corrupt video"))
    rows.append(("image", stash.add_image(media.make_image(folder / "lake.jpg", "blue")), "blue photo"))
    rows.append(("image", stash.add_image(media.make_image(folder / "rotated.jpg", "green", other="green", exif_orientation=6)), "EXIF-rotated photo"))
    inner = media.make_image(folder / "beach.png", "yellow")
    archive = media.make_zip(folder / "holiday.zip", {"beach.png": inner})
    rows.append(("image", stash.add_image("beach.png", zip_path=archive), "photo inside a zip"))
    return rows


def tags_of(stash: FakeStash, kind: str, item_id: str) -> str:
    names = stash.tags_of_scene(item_id) if kind == "scene" else stash.tags_of_image(item_id)
    return ", ".join(sorted(names)) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="tag_untagged", choices=["tag_untagged", "tag_scenes", "tag_images", "preview"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ai-tagger-demo-") as tmp, FakeStash() as stash, FakeModel() as model:
        folder = Path(tmp)
        rows = seed(stash, folder)
        stash.set_plugin_settings(
            "ai_tagger",
            {"gatewayUrl": model.base_url, "apiKey": model.api_key, "model": model.models[0], "minConfidence": 50},
        )
        before = {(kind, item_id): tags_of(stash, kind, item_id) for kind, item_id, _ in rows}
        payload = {"server_connection": stash.server_connection(), "args": {"mode": args.mode}}
        print(f"Running mode {args.mode!r} as Stash would: {sys.executable} {REPO / 'ai_tagger'}\n")
        done = subprocess.run(
            [sys.executable, str(REPO / "ai_tagger")], input=json.dumps(payload), capture_output=True, text=True, cwd=tmp
        )
        for line in done.stderr.splitlines():
            if line.startswith("\x01") and line[1] in "iwe":
                print(f"  [{ {'i': 'info', 'w': 'warn', 'e': 'error'}[line[1]] }] {line[3:]}")
        result = json.loads(done.stdout)
        width = max(len(d) for _, _, d in rows)
        print(f"\n{'item':<10} {'what':<{width}}  {'before':<20} after")
        for kind, item_id, description in rows:
            after = tags_of(stash, kind, item_id)
            print(f"{kind + ' ' + item_id:<10} {description:<{width}}  {before[(kind, item_id)]:<20} {after}")
        output = result["output"] or {}
        tagged = "would tag" if args.mode == "preview" else "tagged"
        print(
            f"\nprocessed {output.get('processed', 0)}, {tagged} {output.get('tagged', 0)}, "
            f"errored {output.get('errored', 0)}, gateway calls {output.get('gateway_calls', 0)}, "
            f"tokens {output.get('tokens', {}).get('total', 0)}"
            + (f"; error: {result['error']}" if result["error"] else "")
        )
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
