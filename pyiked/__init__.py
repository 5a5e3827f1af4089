"""pyiked: an IKEv2 daemon (RFC 7296) for Linux, modelled on OpenIKED."""

__version__ = "0.1.0"
