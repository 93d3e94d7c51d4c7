"""Training: data pipeline, on-the-fly augmentation, losses and the training loop."""
