"""The plugin's settings: one typed model, validated once before any work.

Stash stores what the user typed in Settings > Plugins and omits every setting the user never
touched, so defaults live here. The manifest's setting keys are the fields' names in camelCase
(an alias generator), its ``displayName`` the field's ``title`` and its ``description`` the
field's; :func:`manifest_entries` says what the manifest must declare, and a test compares them.
Booleans default to false in Stash's UI, so a ``true`` default is phrased as its negation
(``disableAutoTag``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ai_tagger.analyze.local.detector import MODELS
from ai_tagger.configured import LOCAL_PROVIDER, missing_settings
from ai_tagger.errors import SettingsError
from ai_tagger.paths import user_path

STATUS_TAGGED = "AI_Tagged"
STATUS_ERRORED = "AI_Errored"
STATUS_REVIEW = "AI_Review"
STATUS_TAGS = (STATUS_TAGGED, STATUS_ERRORED, STATUS_REVIEW)
LOCAL_MODELS = MODELS
"""Models of the built-in ``local`` provider; the first is the default. The detector module imports
only the standard library at load time, so settings may take them from there."""


class Settings(BaseModel):
    """Every setting in ``ai_tagger.yml``; ``description`` is the text Stash shows."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    gateway_url: str | None = Field(
        None,
        title="Gateway URL",
        description="OpenAI-compatible base URL including /v1, e.g. LiteLLM http://localhost:4000/v1, "
        "Ollama http://localhost:11434/v1.",
    )
    api_key: SecretStr | None = Field(
        None,
        title="API key",
        description="Key for the gateway (sent as 'Authorization: Bearer <key>'). Leave empty for Ollama.",
    )
    model: str | None = Field(
        None,
        title="Model",
        description="Vision model name as the gateway knows it, e.g. gpt-4o-mini, qwen2.5vl:7b. With provider "
        "local: nudenet-320n (the default).",
    )
    provider: str = Field(
        "openai",
        title="Provider",
        description="Gateway protocol: 'openai' (any OpenAI-compatible server), 'labels' (a local classifier "
        "server, see README) or 'local' (the built-in NudeNet model: no gateway needed). Default openai.",
    )
    auth_scheme: str = Field(
        "Bearer",
        title="Authorization scheme",
        description="Word before the key in the Authorization header; 'none' sends the raw key (APIPark). "
        "Default Bearer.",
    )
    min_confidence: float = Field(
        60,
        ge=0,
        le=100,
        title="Minimum confidence (%)",
        description="Apply a tag only when the model's confidence is at least this percentage (0-100). Default 60.",
    )
    frames_per_scene: int = Field(
        6,
        ge=1,
        le=64,
        title="Frames per scene",
        description="Frames taken from each video, spread over its length (1-64). Each frame costs tokens. Default 6.",
    )
    frame_interval: float = Field(
        0,
        ge=0,
        le=3600,
        title="Frame interval (s)",
        description="Sample a scene every this many seconds, start to end (dense sampling, needed for scene "
        "markers). 0 = Frames per scene, spread over the video. Default 0.",
    )
    max_frames_per_scene: int = Field(
        600,
        ge=1,
        le=10000,
        title="Maximum frames per scene",
        description="With a frame interval, at most this many frames per scene (a long scene is sampled more "
        "sparsely). Default 600.",
    )
    frames_per_request: int = Field(
        8,
        ge=1,
        le=64,
        title="Frames per request",
        description="With a frame interval, a scene's frames go to the model in requests of at most this many "
        "frames (with Frame layout grid, one contact sheet of this many cells per request). Default 8.",
    )
    exact_frames: bool = Field(
        False,
        title="Exact frame times",
        description="Take spread frames at exactly even times instead of the keyframe nearest each (several "
        "times the CPU per frame). Off by default.",
    )
    marker_tags: str = Field(
        "",
        title="Marker tags",
        description="Scene markers at the moments these applied tags are seen. Comma-separated tag names, '*' for "
        "every applied tag, empty for no markers. Needs a frame interval (or several frames per scene).",
    )
    max_tags_per_item: int = Field(
        10,
        ge=1,
        le=200,
        title="Maximum tags per item",
        description="Keep at most this many tags per scene or image, the most confident first. Default 10.",
    )
    only_existing_tags: bool = Field(
        False,
        title="Only existing tags",
        description="Apply only tags that already exist in Stash (by name or alias); never create new ones.",
    )
    disable_auto_tag: bool = Field(
        False,
        title="Disable automatic tagging",
        description="Do not queue a tagging job when Stash creates new scenes or images.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=64,
        title="Concurrent requests",
        description="Gateway requests in flight at once (1-64). Default 4.",
    )
    request_timeout: float = Field(
        120,
        ge=1,
        le=3600,
        title="Request timeout (s)",
        description="Seconds to wait for one gateway answer before retrying (1-3600). Default 120.",
    )
    max_image_side: int = Field(
        768,
        ge=128,
        le=4096,
        title="Image size (px)",
        description="Long side in pixels of every frame or image sent. Smaller is cheaper. Default 768.",
    )
    frame_layout: Literal["separate", "grid"] = Field(
        "separate",
        title="Frame layout",
        description="'separate': each frame is its own picture; 'grid': all frames of a scene in one contact "
        "sheet (fewer image tokens with most providers). Default separate.",
    )
    image_detail: Literal["auto", "low", "high"] = Field(
        "auto",
        title="Image detail",
        description="OpenAI-style image detail: 'low' is cheapest (a fixed small token cost per picture), "
        "'high' reads fine detail. Default auto.",
    )
    max_tokens_per_run: int = Field(
        0,
        ge=0,
        title="Token budget per run",
        description="Stop the run cleanly once this many tokens were spent (items done stay done). 0 = no limit.",
    )
    include_context: bool = Field(
        False,
        title="Include titles and folders",
        description="Send the item's title, file name and folder names to the model as extra evidence.",
    )
    disable_cache: bool = Field(
        False,
        title="Disable result cache",
        description="Do not reuse earlier model answers for the same file, frames, provider and model.",
    )
    rules_file: str | None = Field(
        None,
        title="Rules file",
        description="Path to a YAML file of tag rules (synonyms, block/allow lists, per-tag thresholds, parents); "
        "relative paths are inside the plugin folder. See rules.example.yml.",
    )
    review_confidence: float | None = Field(
        None,
        ge=0,
        le=100,
        title="Review confidence (%)",
        description="Tags scoring between this and Minimum confidence are not applied; the item gets AI_Review "
        "and the suggestions are kept. Empty or 0 = off.",
    )
    min_frames: int = Field(
        1,
        ge=1,
        le=64,
        title="Minimum frames",
        description="A scene tag must be seen in at least this many frames. Default 1.",
    )
    vocabulary_parent: str | None = Field(
        None,
        title="Vocabulary parent tag",
        description="Only this tag's descendants are offered to the model as the vocabulary. Empty = your "
        "most-used tags.",
    )
    vocabulary_budget: int = Field(
        200,
        ge=0,
        le=5000,
        title="Vocabulary size in prompt",
        description="At most this many of your tag names are sent with each request. Default 200.",
    )
    preview_items: int = Field(
        25,
        ge=0,
        title="Items per preview",
        description="The dry run looks at this many untagged items and projects the cost of all of them "
        "(0 = every item). Default 25.",
    )
    trust_unscored_tags: bool = Field(
        False,
        title="Trust tags without confidence",
        description="Apply tags the model names without a confidence (names-only answers, common with "
        "LLaVA-class models). Off: they go to review when Review confidence is set, else are not applied.",
    )
    write_details: bool = Field(
        False,
        title="Write descriptions",
        description="With the openai provider the tag request also asks for a 1-3 sentence description, written "
        "to the item's Details only where they are empty (never over yours); undo clears it while unchanged.",
    )
    max_answer_tokens: int | None = Field(
        None,
        ge=64,
        le=131072,
        title="Answer token limit",
        description="max_tokens sent with every request; an answer cut by it is asked again once with twice as "
        "many. Reasoning models need more. Empty = 1024 + 64 per Maximum tags per item.",
    )
    created_tag_parent: str = Field(
        "AI",
        title="Parent of created tags",
        description="New tags the plugin creates are put under this parent tag. Default AI.",
    )
    learn_thresholds: bool = Field(
        False,
        title="Learn thresholds from rejections",
        description="Raise the threshold of a tag you often remove (30% or more of at least 10 applications) to "
        "the lowest score that would have kept 90% of those out (at most 99%). The report task lists them.",
    )
    tag_galleries: bool = Field(
        True,
        title="Tag galleries",
        description="Tag untagged galleries from a few of their images (Tag untagged includes them). On unless "
        "you switch it off (Stash shows the box unticked until you change it).",
    )
    images_per_gallery: int = Field(
        6,
        ge=1,
        le=64,
        title="Images per gallery",
        description="Member images a gallery is tagged from: first, last and evenly between (1-64). Images "
        "tagged before cost nothing (their cached answers count). Default 6.",
    )

    transcribe_audio: bool = Field(
        False,
        title="Transcribe speech",
        description="Scenes with sound: transcribe what is said (Speech model) and send it with the frames, so "
        "tags come from what is seen and said. Images and silent videos are never sent. Default off.",
    )
    asr_model: str | None = Field(
        None,
        title="Speech model",
        description="Speech-recognition model the gateway serves (POST /audio/transcriptions), e.g. whisper-1; "
        "or 'local' for the bundled offline faster-whisper tiny.en (English; installed by the dependencies task).",
    )
    max_audio_seconds: float = Field(
        300,
        ge=1,
        le=7200,
        title="Maximum audio per scene (s)",
        description="Transcribe at most this many seconds of a scene, spread over a longer video. Default 300.",
    )
    description_model: str | None = Field(
        None,
        title="Description model",
        description="Model that writes descriptions, when it should not be the vision model. Empty = the vision "
        "model, in the same request as the tags.",
    )

    recognize_performers: bool = Field(
        False,
        title="Recognize performers",
        description="Recognize performers by face, on this machine, from the images of your performers (task "
        "'Index performer faces') and add them to scenes and images. Needs requirements-faces.txt (the Install "
        "dependencies task installs it when this is on). Faces never leave the machine.",
    )
    performer_threshold: float = Field(
        50.0,
        ge=1,
        le=99,
        title="Performer match (%)",
        description="Add a performer only when a face matches their face at least this well (100 minus 100 x "
        "dlib's face distance: 60 = distance 0.4). Higher = fewer wrong performers, more missed. Default 50 "
        "(distance 0.5; dlib calls under 0.6 the same person).",
    )
    performer_review_confidence: float | None = Field(
        None,
        ge=0,
        le=100,
        title="Performer review (%)",
        description="Performer matches between this and Performer match are not added; the item gets AI_Review "
        "and the performer is suggested on the review page. Empty = Review confidence when that is below "
        "Performer match, else off.",
    )

    face_server_url: str | None = Field(
        None,
        title="Face server URL",
        description="Where the plugin cannot install the face packages (Stash's Alpine Docker image): the "
        "address of 'python3 -m ai_tagger.serve' with requirements-faces.txt, e.g. http://ai-tagger:8765. "
        "Faces are then computed there. Empty = in the plugin's own Python.",
    )

    @field_validator(
        "gateway_url",
        "model",
        "api_key",
        "rules_file",
        "vocabulary_parent",
        "review_confidence",
        "performer_review_confidence",
        "face_server_url",
        "max_answer_tokens",
        "asr_model",
        "description_model",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _local_model(cls, data: Any) -> Any:
        """With provider local, ``model`` names the built-in detector and defaults to it."""
        if not isinstance(data, dict):
            return data
        provider = data.get("provider")
        if not isinstance(provider, str) or provider.strip().lower() != LOCAL_PROVIDER:
            return data
        model = data.get("model")
        if model is None or (isinstance(model, str) and not model.strip()):
            return {**data, "model": LOCAL_MODELS[0]}
        if not isinstance(model, str) or model.strip() not in LOCAL_MODELS:
            raise ValueError(f"model: provider local offers {', '.join(LOCAL_MODELS)}, not {model!r}")
        return data

    @field_validator(
        "min_confidence", "frames_per_scene", "max_tags_per_item", "concurrency", "request_timeout",
        "max_image_side", "max_tokens_per_run", "review_confidence", "min_frames", "vocabulary_budget",
        "preview_items", "max_answer_tokens", "frame_interval", "max_frames_per_scene", "frames_per_request",
        "max_audio_seconds", "images_per_gallery", "performer_threshold", "performer_review_confidence",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        """pydantic reads ``true`` as 1; for a number setting that is a mistake, not a value."""
        if isinstance(value, bool):
            raise ValueError("must be a number, not true/false")
        return value

    @field_validator("api_key", "auth_scheme", mode="before")
    @classmethod
    def _one_header_value(cls, value: Any) -> Any:
        """A line break in a header value would add headers of its own (and put the key in error texts)."""
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value.strip()):
            raise ValueError("contains a line break or other control character: paste the value alone, on one line")
        return value

    @field_validator("max_answer_tokens", "review_confidence", mode="before")
    @classmethod
    def _zero_is_unset(cls, value: Any) -> Any:
        """0 means "not set": Stash's settings page shows an unset NUMBER as 0 and cannot clear one again."""
        return None if value in (0, "0") and not isinstance(value, bool) else value

    @field_validator("frame_layout", "image_detail", "provider", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("gateway_url", "face_server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://localhost:4000/v1")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not contain a user name or password: put the key in apiKey")
        if parts.query or parts.fragment:
            raise ValueError("must not contain a query string (?...) or fragment: put a key in apiKey")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0 or any(c.isspace() for c in value):
            raise ValueError("must have a port from 1 to 65535 and no spaces, e.g. http://localhost:4000/v1")
        return value.rstrip("/")

    @field_validator("created_tag_parent")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if value.strip().casefold() in {name.casefold() for name in STATUS_TAGS}:
            raise ValueError(f"must not be a status tag ({', '.join(STATUS_TAGS)}): choose another name, e.g. AI")
        return value.strip()

    @model_validator(mode="after")
    def _review_below_apply(self) -> Settings:
        if self.review_confidence is not None and self.review_confidence >= self.min_confidence:
            raise ValueError(
                f"reviewConfidence ({self.review_confidence:g}) must be below minConfidence ({self.min_confidence:g})"
            )
        review = self.performer_review_confidence
        if review is not None and review >= self.performer_threshold:
            raise ValueError(
                f"performerReviewConfidence ({review:g}) must be below "
                f"performerThreshold ({self.performer_threshold:g})"
            )
        return self

    @model_validator(mode="after")
    def _speech_needs_a_model(self) -> Settings:
        if not self.transcribe_audio:
            return self
        if self.asr_model is None:
            raise ValueError(
                "transcribeAudio is on but asrModel is empty: name the gateway's speech model (e.g. whisper-1) "
                "or 'local'"
            )
        if not self.local_asr and not self.gateway_url:
            raise ValueError(f"asrModel {self.asr_model!r} is a gateway model: set gatewayUrl, or use asrModel local")
        return self

    @property
    def local_asr(self) -> bool:
        """Speech is transcribed in this process (``asrModel: local``)."""
        return (self.asr_model or "").lower() == LOCAL_PROVIDER

    def gateway_models(self) -> dict[str, str]:
        """Models besides ``model`` that this run asks the gateway for, by setting: preflight checks each."""
        models = {}
        if self.speech and not self.local_asr:
            models["asrModel"] = str(self.asr_model)
        if self.description_model:
            models["descriptionModel"] = self.description_model
        return models

    @property
    def describer(self) -> str | None:
        """``descriptionModel`` when descriptions come from a model other than the vision model."""
        if self.write_details and self.description_model and self.description_model != self.model:
            return self.description_model
        return None

    @property
    def speech(self) -> bool:
        """Scenes' speech is transcribed in this run."""
        return self.transcribe_audio and self.asr_model is not None

    @property
    def performer_match(self) -> float:
        """``performerThreshold`` as a 0..1 match score (1 - dlib's face distance)."""
        return self.performer_threshold / 100

    @property
    def performer_review(self) -> float | None:
        """The performer review floor: ``performerReviewConfidence``, else ``reviewConfidence`` when
        that is below ``performerThreshold`` (one review floor for users who set only that one)."""
        floor = self.performer_review_confidence
        if floor is None and self.review_confidence is not None and self.review_confidence < self.performer_threshold:
            floor = self.review_confidence
        return None if floor is None else floor / 100

    @property
    def review_threshold(self) -> float | None:
        return None if self.review_confidence is None else self.review_confidence / 100

    @property
    def answer_tokens(self) -> int:
        """``max_tokens`` per request: ``maxAnswerTokens``, else room for the reasoning and
        ``maxTagsPerItem`` entries (about 30 tokens each) with a margin for longer lists."""
        return self.max_answer_tokens or 1024 + 64 * self.max_tags_per_item

    @property
    def threshold(self) -> float:
        """``minConfidence`` as the 0..1 fraction models answer with."""
        return self.min_confidence / 100

    @property
    def local(self) -> bool:
        """The built-in model: no gateway, no vocabulary or prompt."""
        return self.provider == LOCAL_PROVIDER

    @property
    def configured(self) -> bool:
        return not missing_settings(self.provider, self.gateway_url, self.model)

    def describe_model(self) -> str:
        """The model a run uses, for the log."""
        if self.local:
            return f"the built-in local model {self.model}"
        return f"{self.model} at {self.gateway_url}"

    @classmethod
    def from_stash(cls, values: dict[str, Any] | None) -> Settings:
        """Validate the map Stash returns; raise :class:`SettingsError`, one line per bad key."""
        try:
            return cls.model_validate(values or {})
        except ValidationError as exc:
            # A key pasted into the wrong field is still a key: never echo it there either.
            secrets = [str(v).strip() for f in UNECHOED for v in raw_values(values or {}, f) if str(v).strip()]
            secrets += [json.dumps(s)[1:-1] for s in secrets]  # as an echo would write it
            problems = []
            for error in exc.errors(include_url=False):
                key = ".".join(str(p) for p in error["loc"])
                message = plain_message(error)
                if not key:
                    problems.append(message)
                    continue
                got = json.dumps(error.get("input"), default=str)
                hidden = _field_of(key) in UNECHOED or "input" not in error or any(s in got for s in secrets)
                shown = "" if hidden else f" (got {got})"
                problems.append(f"{key}: {message}{shown}")
            raise SettingsError(
                "Invalid AI Tagger settings (fix them in Settings > Plugins > AI Tagger):\n" + "\n".join(problems)
            ) from None


UNECHOED = frozenset({"api_key", "gateway_url", "face_server_url", "auth_scheme"})
"""Fields whose value is never repeated in an error, whichever spelling (``apiKey``, ``api_key``)
the value came under: it may hold (or leak) a secret."""


def _field_of(key: str) -> str:
    """The field a setting key names, by its camelCase alias or its snake_case name."""
    if key in Settings.model_fields:
        return key
    return next((name for name, field in Settings.model_fields.items() if field.alias == key), key)


def raw_values(raw: dict[str, Any], field: str) -> list[Any]:
    """A field's raw values under every spelling the model accepts, to redact before validation."""
    return [raw[key] for key in dict.fromkeys((field, Settings.model_fields[field].alias or field)) if key in raw]

_PLAIN = {
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}",
    "finite_number": "must be a finite number",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "missing": "is required",
}


def plain_message(error: Any) -> str:
    """A pydantic error as words a user can act on: no library links, no Python type names."""
    template = _PLAIN.get(error["type"])
    if template:
        ctx = {k: f"{v:g}" if isinstance(v, (int, float)) else v for k, v in (error.get("ctx") or {}).items()}
        return template.format(**ctx)
    return str(error["msg"]).removeprefix("Value error, ")


def _stash_type(annotation: Any) -> str:
    if annotation is bool:
        return "BOOLEAN"
    if annotation in (int, float, float | None, int | None):
        return "NUMBER"
    return "STRING"


def manifest_entries() -> dict[str, dict[str, str]]:
    """Setting key -> its manifest entry (``displayName``, ``description``, ``type``), from the model."""
    return {
        field.alias or name: {
            "displayName": field.title or name,
            "description": field.description or "",
            "type": _stash_type(field.annotation),
        }
        for name, field in Settings.model_fields.items()
    }


def manifest_settings() -> dict[str, str]:
    """Setting key -> Stash type, as the manifest must declare them."""
    return {key: entry["type"] for key, entry in manifest_entries().items()}


PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def rules_path(rules_file: str, plugin_dir: str | None) -> Path:
    """A relative ``rulesFile`` is inside the plugin folder."""
    path = user_path(rules_file, "rulesFile", error=SettingsError)
    if path.is_absolute():
        return path
    folder = user_path(plugin_dir, "server_connection.PluginDir", expand=False) if plugin_dir else PACKAGE_PARENT
    return folder / path
