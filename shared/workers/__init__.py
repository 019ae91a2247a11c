"""The workers' I/O: they run the pure decisions of `shared.sync` against the gateways and tables."""
