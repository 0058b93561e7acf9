"""Ingestion, validation, featurization, training and evaluation steps."""
