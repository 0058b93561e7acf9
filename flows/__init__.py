"""Prefect flows (daily_trading, retrain, drift_check), their deployments and the CLI."""
