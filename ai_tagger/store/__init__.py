"""The plugin's own SQLite state: the answer cache and the provenance journal, each owning its tables."""
