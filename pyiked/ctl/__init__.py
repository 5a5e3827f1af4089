"""pyiked.ctl."""
