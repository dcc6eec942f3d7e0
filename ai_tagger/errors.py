"""Every exception the plugin raises on purpose, in one tree.

The split that matters is who stops: a :class:`RunError` ends the run (nothing more can be
done until the user fixes something), an :class:`ItemError` fails one item, which is marked
``AI_Errored`` while the run goes on. Handlers catch ``ItemError`` per item and ``RunError``
once around the run, so no handler ever has to re-raise a subclass before catching its parent.

Hierarchy::

    AiTaggerError
    ├── RunError                    the run cannot go on; items done so far stay done
    │   ├── SettingsError           a setting (or task argument) the plugin cannot work with
    │   ├── RulesError              the rules file is missing or malformed (names file and line)
    │   ├── StashError              Stash unreachable, refused our credentials, rejected a request
    │   ├── GatewayFatal            the gateway refused us: unreachable, key refused, unknown model
    │   ├── UsageError              the command line or the stdin input cannot be used
    │   ├── InputError              a task argument cannot be used (limit, dataDir)
    │   ├── RunBusy                 another live run holds the library; this one changed nothing
    │   └── HookError               a hook could not ask Stash (logged; the scan goes on)
    └── ItemError                   this item only
        ├── MediaError              a corrupt, missing or unreadable file
        └── GatewayError            one item's request failed after retries
            └── MalformedAnswer     the model's text holds no valid answer

A run that stops early for a reason that is not a failure (the token budget is spent) is not
an exception: it is the run summary's ``stopped`` state (:mod:`ai_tagger.tasks.summary`).

Each class is re-exported from the module that raised it before this tree existed
(``ai_tagger.settings.SettingsError``, ``ai_tagger.analyze.gateway.base.GatewayFatal``,
``ai_tagger.entry.UsageError``, ``ai_tagger.store.runlock.RunBusy``...), so those
imports keep working. ``SettingsError``, ``RulesError``, ``UsageError``, ``InputError`` and
``MalformedAnswer`` stay ``ValueError`` too (``RunBusy`` a ``RuntimeError``), as they always were.

This module imports nothing: the hook path (standard library only) can use it.
"""

from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    """The pipeline stage an item failed in, as the run reports it."""

    ITEM = "item"
    MEDIA = "media"
    GATEWAY = "gateway"

    def __str__(self) -> str:
        return self.value


class AiTaggerError(Exception):
    """Base of every error the plugin raises on purpose; the message says what to fix."""


class RunError(AiTaggerError):
    """The run cannot go on; items done so far stay done."""


class ItemError(AiTaggerError):
    """This item cannot be tagged now; it is marked ``AI_Errored`` and the run goes on."""

    stage = Stage.ITEM


class SettingsError(RunError, ValueError):
    """A setting has a value the plugin cannot work with; the message says which and why."""


class RulesError(RunError, ValueError):
    """The rules file cannot be used; the message names the file and the line."""


class StashError(RunError):
    """Stash could not be reached, refused us, or rejected a request."""


class GatewayFatal(RunError):
    """The gateway cannot work at all (unreachable, key refused, unknown model): stop the run."""


class UsageError(RunError, ValueError):
    """A command-line argument or the stdin input cannot be used; one line per problem."""


class InputError(RunError, ValueError):
    """The input (Stash's stdin or the command line) cannot be used; the message names the field."""


class RunBusy(RunError, RuntimeError):
    """Another live run holds the library; this run changed nothing."""


class HookError(RunError):
    """Stash could not be asked; the hook logs it and lets the scan go on."""


class MediaError(ItemError):
    """A corrupt, missing or unreadable file; it fails one item, never the run."""

    stage = Stage.MEDIA


class GatewayError(ItemError):
    """One item's request failed (after retries); other items may still succeed."""

    stage = Stage.GATEWAY


class MalformedAnswer(GatewayError, ValueError):
    """The model's text holds no usable tag list."""
