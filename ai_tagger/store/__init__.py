"""SQLite tables in the plugin's cache file, one owner module per table."""
