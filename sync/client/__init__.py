"""The device side of sync: the transport, applying server state, and the sync loop."""
