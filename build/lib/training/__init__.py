"""Training: datasets, augmentation, loss and the training loop."""
