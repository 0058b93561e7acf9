"""Backtests: the vectorized engine (research, the gate) and the replay of the daily flow's
own steps over history; both return a :class:`BacktestResult`."""
