"""Performers recognised by face: the dlib engine, the per-performer index and the match decision.

Only the standard library is imported here: dlib and numpy (``requirements-faces.txt``) load when an
engine or an index is first used, so the hook and runs with recognition off never pay for them.
"""
