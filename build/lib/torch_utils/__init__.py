"""PyTorch utilities: shape asserts, parameter copying, summaries, persistence, custom ops."""
