"""Evaluation metrics (numpy only): classification, fairness, calibration, label
distributions and affect. Definitions: docs/evaluation-protocol.md."""
