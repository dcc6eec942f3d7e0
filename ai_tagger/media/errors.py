"""The one failure the media stage reports: this item's file cannot be turned into pictures."""


class MediaError(Exception):
    """A corrupt, missing or unreadable file; it fails one item, never the run."""
