"""pyiked.core.auth."""
