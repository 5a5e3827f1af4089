"""pyiked.core.exchanges."""
