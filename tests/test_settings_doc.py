"""docs/settings.md's table is generated from the manifest; a stale page fails here."""

from __future__ import annotations

import yaml

from ai_tagger import settings_doc
from tests.conftest import REPO


def test_settings_page_matches_the_manifest_else_says_how_to_regenerate_it():
    page = settings_doc.PAGE.read_text(encoding="utf-8")
    manifest = yaml.safe_load(settings_doc.MANIFEST.read_text(encoding="utf-8"))

    assert settings_doc.render(page, manifest) == page, f"docs/settings.md is stale: run {settings_doc.COMMAND}"


def test_settings_page_lists_every_setting_with_its_default_and_range():
    page = settings_doc.PAGE.read_text(encoding="utf-8")
    manifest = yaml.safe_load((REPO / "ai_tagger.yml").read_text(encoding="utf-8"))

    for key in manifest["settings"]:
        assert f"| `{key}` |" in page, key
    assert "| `minConfidence` | Minimum confidence (%) | NUMBER | `60` | 0–100 |" in page
    assert "| `frameLayout` | Frame layout | STRING | `separate` | `separate`, `grid` |" in page


def test_check_fails_on_a_stale_page_and_names_the_command(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "settings.md"
    stale.write_text(f"# Settings\n\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\nprose stays\n")
    monkeypatch.setattr(settings_doc, "PAGE", stale)
    monkeypatch.setattr(settings_doc, "REPO", tmp_path)

    assert settings_doc.main(["--check"]) == 1
    assert "python3 -m ai_tagger.settings_doc" in capsys.readouterr().err
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0
    text = stale.read_text()
    assert "| `gatewayUrl` |" in text and "| old |" not in text and text.endswith("prose stays\n")
