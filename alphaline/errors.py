"""The project's own failures. The CLI maps exactly these to exit codes; anything else is a
bug and surfaces as one (exit 1 with its traceback)."""

from __future__ import annotations


class AlphalineError(Exception):
    """Base of every failure alphaline reports to a user as a message, not a traceback."""

    exit_code = 1


class ConfigError(AlphalineError, ValueError):
    """A parameter file that cannot be used; the message names each bad key."""

    exit_code = 2


class DataRejected(AlphalineError):
    """Input data failed validation and was quarantined."""

    exit_code = 3


class MissingPrerequisite(AlphalineError):
    """Something an earlier step makes is not there yet (data, a champion, a schema)."""

    exit_code = 4


class SourceError(AlphalineError):
    """A source could not deliver bars (missing files, unreadable data, HTTP failure)."""

    exit_code = 1


class LockHeld(MissingPrerequisite):
    """Another run (daily_trading, retrain or drift_check) holds the shared-state lock; the
    message names it and how long it has held it."""


class IllegalTransition(AlphalineError):
    """An order move its state machine forbids (or a fill the ledger refuses: for an order the
    risk engine did not approve, or beyond what remains); nothing was changed."""
