"""Datasets, splits, training, evaluation and the MLflow registry."""
