"""pyiked.config."""
