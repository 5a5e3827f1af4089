"""pyiked.kernel."""
