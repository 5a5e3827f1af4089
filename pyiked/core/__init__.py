"""The IKEv2 protocol, sans-I/O: no sockets, no clock, no kernel.

Import the engine from `pyiked.core.engine`; this package stays light so that
`pyiked._fast` can import the `iana` and `errors` tables without pulling in the engine.
"""
