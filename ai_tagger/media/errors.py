"""The one failure the media stage reports: this item's file cannot be turned into pictures."""

from ai_tagger.errors import MediaError

__all__ = ["MediaError"]
