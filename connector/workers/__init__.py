"""The workers' I/O: they run the pure decisions of `connector.sync` against the gateways and tables."""
