"""Settings are validated once, with defaults for what Stash omits and errors that name the key."""

from __future__ import annotations

import pytest

from ai_tagger.settings import Settings, SettingsError, manifest_settings


def test_untouched_settings_get_defaults():
    settings = Settings.from_stash({})
    assert settings.min_confidence == 60
    assert settings.frames_per_scene == 6
    assert settings.only_existing_tags is False
    assert settings.configured is False


def test_stash_numbers_and_strings_are_read_leniently():
    # Stash sends NUMBER settings as JSON numbers (8.0), the CLI as strings.
    settings = Settings.from_stash({"framesPerScene": 8.0, "concurrency": "3", "gatewayUrl": " http://h:4000/v1/ "})
    assert settings.frames_per_scene == 8
    assert settings.concurrency == 3
    assert settings.gateway_url == "http://h:4000/v1"


def test_blank_strings_mean_unset():
    settings = Settings.from_stash({"gatewayUrl": "", "apiKey": "  ", "model": ""})
    assert settings.gateway_url is None and settings.api_key is None and settings.model is None


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"minConfidence": 150}, "minConfidence"),  # percent scale, not 0..1 and not above 100
        ({"minConfidence": -1}, "minConfidence"),
        ({"gatewayUrl": "ftp://host/v1"}, "gatewayUrl"),  # only http(s) gateways exist
        ({"gatewayUrl": "http://"}, "gatewayUrl"),  # no host
        ({"framesPerScene": 2.5}, "framesPerScene"),  # a fraction of a frame
        ({"maxTagsPerItem": 0}, "maxTagsPerItem"),
        ({"concurrency": 0}, "concurrency"),
        ({"createdTagParent": " "}, "createdTagParent"),
    ],
)
def test_invalid_values_name_the_setting(values, key):
    with pytest.raises(SettingsError, match=key):
        Settings.from_stash(values)


def test_api_key_is_never_echoed_in_errors():
    with pytest.raises(SettingsError) as caught:
        Settings.from_stash({"apiKey": {"nested": "sk-secret-value"}})
    assert "sk-secret-value" not in str(caught.value)


def test_api_key_is_hidden_in_repr():
    settings = Settings.from_stash({"apiKey": "sk-secret-value"})
    assert "sk-secret-value" not in repr(settings)
    assert settings.api_key.get_secret_value() == "sk-secret-value"


@pytest.mark.parametrize("key", [k for k, kind in manifest_settings().items() if kind == "NUMBER"])
@pytest.mark.parametrize("value", [True, False])
def test_number_settings_refuse_booleans(key, value):
    # pydantic would read true as 1 (minConfidence: true -> 1 %); every NUMBER setting refuses it by name.
    with pytest.raises(SettingsError, match=f"{key}: must be a number, not true/false"):
        Settings.from_stash({key: value})


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"gatewayUrl": "http://user:pw@h:4000/v1"}, "gatewayUrl"),  # credentials belong in apiKey
        ({"gatewayUrl": "http://h:4000/v1?key=abcd"}, "gatewayUrl"),
        ({"gatewayUrl": "http://h:99999/v1"}, "gatewayUrl"),  # port out of range
        ({"gatewayUrl": "http://h:0/v1"}, "gatewayUrl"),
        ({"apiKey": "sk-abcd\nX-Evil: 1"}, "apiKey"),  # header injection
        ({"authScheme": "Bearer\r\nX-Evil: 1"}, "authScheme"),
        ({"requestTimeout": 0.5}, "requestTimeout"),
        ({"createdTagParent": "ai_review"}, "createdTagParent"),  # a status tag, in any case
    ],
)
def test_unsafe_values_are_refused_without_echo(values, key):
    with pytest.raises(SettingsError, match=key) as caught:
        Settings.from_stash(values)
    message = str(caught.value)
    assert "pw" not in message and "abcd" not in message and "X-Evil" not in message
    assert "errors.pydantic.dev" not in message


@pytest.mark.parametrize("value", [0, 0.0, "0"])
def test_review_confidence_zero_is_off_since_stashs_settings_page_cannot_clear_a_number(value):
    settings = Settings.from_stash({"minConfidence": 60, "reviewConfidence": value})
    assert settings.review_confidence is None and settings.review_threshold is None


@pytest.mark.parametrize("key", ["faceServerUrl", "face_server_url"])
def test_a_rejected_face_server_url_is_not_echoed_since_it_may_carry_a_token(key):
    with pytest.raises(SettingsError) as caught:
        Settings.from_stash({key: "http://host:8765/?token=SECRET123"})
    message = str(caught.value)
    assert "SECRET123" not in message
    assert key in message or "faceServerUrl" in message
