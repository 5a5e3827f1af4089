"""pyiked.daemon."""
