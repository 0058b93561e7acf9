"""The trading states and their order of severity.

``ACTIVE`` trades normally, ``REDUCING`` lets only orders that shrink a position pass,
``HALTED`` refuses every order and cancels working ones. A rule (a kill switch) may only
raise the severity; lowering it is a person's decision (``alphaline risk resume``).
"""

from __future__ import annotations

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
TRADING_STATES = (ACTIVE, REDUCING, HALTED)  # in order of severity


def severity(state: str) -> int:
    """0 for ACTIVE .. 2 for HALTED; an unknown state is treated as the most severe."""
    return TRADING_STATES.index(state) if state in TRADING_STATES else len(TRADING_STATES)


def escalate(current: str, proposed: str | None) -> str:
    """The more severe of two states: a rule never relaxes what a person or rule set."""
    if proposed is None:
        return current
    return proposed if severity(proposed) > severity(current) else current
