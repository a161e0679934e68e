"""Image-quality metrics (FID, KID, precision/recall, IS, PPL) and their feature detectors;
see docs/metrics.md and metric_main.py for the registry."""
