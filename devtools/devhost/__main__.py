"""``python -m devtools.devhost``: run the function app like ``func start``.

Reads ``local.settings.json`` ``Values`` into the environment (a variable already set in the
environment wins, as with ``func start``), reads ``host.json`` from ``--root``, imports ``--app``
with the root on ``sys.path`` and serves on ``--host``/``--port`` (default 7071, or
``Host.LocalHttpPort`` from local.settings.json). Ctrl+C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from .errors import DevHostError
from .host import DevHost
from .settings import load_local_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.devhost", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--root", type=Path, default=Path("."), help="script root (host.json, app module)")
    parser.add_argument("--settings", type=Path, default=None, help="local.settings.json (default: <root>/...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default 7071 or Host.LocalHttpPort")
    parser.add_argument("--no-timers", action="store_true", help="timers run only through the admin API")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every HTTP call at INFO
    root = args.root.resolve()
    settings_file = args.settings if args.settings is not None else root / "local.settings.json"
    port = args.port
    if port is None:
        port = load_local_settings(settings_file).local_http_port or 7071
    host = DevHost(args.app, root, host=args.host, port=port, settings_file=settings_file, timers=not args.no_timers)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        host.start()
    except (DevHostError, OSError) as exc:  # OSError: the port is taken (another func start / dev host?)
        logging.getLogger("devhost").error("Start-up failed: %s", exc)
        return 1
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
