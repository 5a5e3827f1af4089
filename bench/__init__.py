"""pyiked benchmarks: `python -m bench [--quick] [names...]`."""
