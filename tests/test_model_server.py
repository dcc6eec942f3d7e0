"""The fake vision model must answer from pixels, or end-to-end tests prove nothing."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator

import pytest
import requests
from PIL import Image, ImageDraw

from tests.servers.model_server import DEFAULT_PALETTE, Colour, FakeModel, classify, image_tokens


def jpeg_b64(rgb: tuple[int, int, int] | str, size: tuple[int, int] = (64, 48)) -> str:
    colour = next(c.rgb for c in DEFAULT_PALETTE if c.name == rgb) if isinstance(rgb, str) else rgb
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image_part(b64: str, detail: str = "low") -> dict:
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}", "detail": detail}}


def chat(server: FakeModel, images: list[str], text: str = "Tag these frames.", **extra) -> requests.Response:
    body = {"model": server.models[0],
            "messages": [{"role": "system", "content": "You are a tagger."},
                         {"role": "user", "content": [{"type": "text", "text": text},
                                                      *[image_part(b) for b in images]]}],
            **extra}
    return requests.post(f"{server.base_url}/chat/completions", json=body, headers=server.auth_header, timeout=10)


JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "tags", "schema": {"type": "object"}}}


@pytest.fixture
def server() -> Iterator[FakeModel]:
    with FakeModel() as fake:
        yield fake


def test_classify_nearest_palette_colour() -> None:
    assert classify((200, 40, 30)).name == "red"
    assert classify((120, 130, 125)).name == "gray"


def test_auth_required(server: FakeModel) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server.api_key}):
        r = requests.get(f"{server.base_url}/models", headers=headers, timeout=5)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert server.auth_failures == 3
    assert server.completion_count == 0


def test_raw_key_auth_scheme() -> None:
    with FakeModel(auth_scheme=None, api_key="k123") as fake:
        assert requests.get(f"{fake.base_url}/models", headers={"Authorization": "k123"}, timeout=5).ok
        r = requests.get(f"{fake.base_url}/models", headers={"Authorization": "Bearer k123"}, timeout=5)
        assert r.status_code == 401


def test_models_list_and_lookup() -> None:
    with FakeModel(models=["vision-test", "org/other"]) as fake:
        r = requests.get(f"{fake.base_url}/models", headers=fake.auth_header, timeout=5)
        assert r.json()["object"] == "list"
        assert [m["id"] for m in r.json()["data"]] == ["vision-test", "org/other"]
        one = requests.get(f"{fake.base_url}/models/org/other", headers=fake.auth_header, timeout=5)
        assert one.json()["id"] == "org/other"
        missing = requests.get(f"{fake.base_url}/models/nope", headers=fake.auth_header, timeout=5)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"


def test_two_images_give_tags_for_their_colours(server: FakeModel) -> None:
    r = chat(server, [jpeg_b64("red"), jpeg_b64("blue"), jpeg_b64("gray"), jpeg_b64("red")],
             response_format=JSON_FORMAT)
    assert r.status_code == 200
    content = r.json()["choices"][0]["message"]["content"]
    assert json.loads(content) == {"tags": [
        {"name": "Red", "confidence": 0.9, "frames": [1, 4]},
        {"name": "Water", "confidence": 0.8, "frames": [2]},
    ]}
    rec = server.requests[-1]
    assert rec["n_images"] == 4 and rec["image_sizes"] == [(64, 48)] * 4
    assert rec["detail"] == ["low"] * 4
    assert rec["response_format"] == JSON_FORMAT and rec["status"] == 200
    assert "Tag these frames." in rec["text"] and "authorization" not in {k.lower() for k in rec["headers"]}
    assert "base64" not in repr(rec)
    assert server.images_received == 4


def test_unknown_model_404(server: FakeModel) -> None:
    body = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    r = requests.post(f"{server.base_url}/chat/completions", json=body, headers=server.auth_header, timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_palette_replaceable_at_runtime(server: FakeModel) -> None:
    server.palette = [Colour("red", (220, 20, 20), " red ", 0.5), Colour("blue", (20, 20, 220), "Dogs", 0.4)]
    tags = json.loads(chat(server, [jpeg_b64("red"), jpeg_b64("blue")]).json()["choices"][0]["message"]["content"])
    assert [t["name"] for t in tags["tags"]] == [" red ", "Dogs"]


def test_fenced_and_prose_answer_styles(server: FakeModel) -> None:
    server.honour_response_format = False
    content = chat(server, [jpeg_b64("green")], response_format=JSON_FORMAT).json()["choices"][0]["message"]["content"]
    assert "```json" in content and not content.lstrip().startswith("{")
    block = content.split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(block)["tags"][0]["name"] == "Outdoors"

    server.answer_style = "prose"
    content = chat(server, [jpeg_b64("green")]).json()["choices"][0]["message"]["content"]
    assert "```" not in content and '{"tags": [{"name": "Outdoors"' in content


def test_fail_next_429_with_retry_after(server: FakeModel) -> None:
    server.fail_next = [429, 500]
    server.retry_after = 2
    first = chat(server, [jpeg_b64("red")])
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2" and first.headers["llm_provider-retry-after"] == "2"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert chat(server, [jpeg_b64("red")]).status_code == 500
    assert chat(server, [jpeg_b64("red")]).status_code == 200
    assert [r["status"] for r in server.requests] == [429, 500, 200]
    assert server.completion_count == 3


def test_malformed_and_empty_colours(server: FakeModel) -> None:
    server.malformed_colour = "yellow"
    server.empty_colour = "black"
    bad = chat(server, [jpeg_b64("red"), jpeg_b64("yellow")]).json()["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    assert chat(server, [jpeg_b64("black")]).json()["choices"][0]["message"]["content"] == ""
    assert json.loads(chat(server, [jpeg_b64("red")]).json()["choices"][0]["message"]["content"])["tags"]


def test_usage_tokens(server: FakeModel) -> None:
    data = chat(server, [jpeg_b64("red")], text="abcd" * 10).json()
    usage = data["usage"]
    text_len = len("You are a tagger.") + 1 + 40  # parts are joined with a newline
    assert usage["prompt_tokens"] == -(-text_len // 4) + 85  # detail=low: flat 85
    assert usage["completion_tokens"] == -(-len(data["choices"][0]["message"]["content"]) // 4)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # high detail: 1920x1080 -> 1365x768 -> 3x2 tiles
    assert image_tokens(1920, 1080, "high") == 85 + 170 * 6
    assert image_tokens(512, 512, "auto") == 85 + 170


def test_grid_splits_cells_row_major(server: FakeModel) -> None:
    grid = Image.new("RGB", (300, 200), DEFAULT_PALETTE[0].rgb)  # red
    draw = ImageDraw.Draw(grid)
    draw.rectangle((100, 0, 199, 99), fill=(20, 160, 20))  # cell 2 green
    draw.rectangle((0, 100, 99, 199), fill=(20, 20, 220))  # cell 4 blue
    draw.rectangle((200, 100, 299, 199), fill=(20, 160, 20))  # cell 6 green
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()
    content = chat(server, [b64, jpeg_b64("blue")], text="Frames as a GRID 2x3.").json()["choices"][0]["message"]
    tags = {t["name"]: t["frames"] for t in json.loads(content["content"])["tags"]}
    # Numbering continues into the second image: its 6 blue cells are frames 7..12.
    assert tags == {"Red": [1, 3, 5], "Outdoors": [2, 6], "Water": [4, 7, 8, 9, 10, 11, 12]}


def test_max_in_flight_counts_concurrent_requests() -> None:
    with FakeModel(latency=0.3) as fake:
        threads = [threading.Thread(target=chat, args=(fake, [jpeg_b64("red")])) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fake.max_in_flight == 4
        fake.reset()
        chat(fake, [jpeg_b64("red")])
        chat(fake, [jpeg_b64("red")])
        assert fake.max_in_flight == 1 and fake.completion_count == 2


def test_labels_endpoint(server: FakeModel) -> None:
    body = {"images": [jpeg_b64("yellow"), jpeg_b64("white"), jpeg_b64("yellow")], "model": "vision-test"}
    r = requests.post(f"{server.base_url}/labels", json=body, headers=server.auth_header, timeout=5)
    assert r.status_code == 200
    assert r.json()["labels"] == [{"name": "Beach", "score": 0.7, "frames": [1, 3]},
                                  {"name": "Bright", "score": 0.35, "frames": [2]}]
    assert server.label_requests[-1]["n_images"] == 3
    assert requests.post(f"{server.base_url}/labels", json=body, timeout=5).status_code == 401


def test_malformed_bodies_get_400_and_server_survives(server: FakeModel) -> None:
    url = f"{server.base_url}/chat/completions"
    bad_bodies = [b"{not json", b"[]", json.dumps({"model": "vision-test"}).encode(),
                  json.dumps({"model": "vision-test", "messages": [{"role": "user", "content": [
                      {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}]}).encode(),
                  json.dumps({"model": "vision-test", "messages": [{"role": "user", "content": [
                      {"type": "image_url", "image_url": {"url": "https://example.com/x.jpg"}}]}]}).encode()]
    for raw in bad_bodies:
        r = requests.post(url, data=raw, headers={**server.auth_header, "Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 400, raw
        assert "message" in r.json()["error"]
    assert chat(server, [jpeg_b64("red")]).status_code == 200
