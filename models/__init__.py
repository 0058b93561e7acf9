"""Estimators, splitters, tuning, metrics, the registry gate and explanations."""
