"""Brokers: where approved orders go. ``paper`` simulates fills; live brokers need a switch."""
