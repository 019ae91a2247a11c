"""The local stack as separate, instrumented processes, for the benchmarks (`python -m bench`).

`BenchStack` (stack.py) starts Azurite (in memory), the Graph emulator, the Dime.Scheduler emulator
and the dev host running the function app, each in its own process on free ports, as `make run` does
(so the load generator, the emulators and the app never share a GIL, and the dev host's memory is
its own). Each Python process is started through `launch.py`, which adds a `/_bench` control plane:

- every process: CPU seconds, RSS and peak RSS (`GET /_bench/stats`), a wall-clock stack sampler
  (`POST /_bench/profile/start`, `POST /_bench/profile/stop` → the hottest functions);
- the emulators: the time spent inside their own request handlers (the emulator's share of a
  benchmark), and a log of completed writes with wall-clock times (Graph event writes, inner
  `$batch` requests included; Dime.Scheduler imports), so a benchmark can time a change end to end
  without polling the emulator;
- the dev host: Azure Storage operations counted by function, service and kind (a hook on the
  azure-core transports), and every function invocation with its duration.

Nothing in `functions/` or `connector/` knows about any of it. `bench/` uses this package and never
imports `tests/`.
"""
