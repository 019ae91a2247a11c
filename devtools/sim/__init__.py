"""A deterministic simulation of the connector's world (after FoundationDB's and TigerBeetle's VOPR).

The real workers, decisions, stores and function entry points run unchanged against in-memory stand-ins
of Graph, Dime.Scheduler, Table Storage and the queues, on one event loop whose clock is virtual. A
seeded scheduler interleaves planners, people editing Outlook, queue deliveries, timers and webhooks,
resolves every I/O point in a random order and injects faults there; invariants are checked on the
whole world at the end. Same seed, same run. See `world.run_seed`.
"""
