"""``python -m devtools.scheduler_emulator --host 127.0.0.1 --port 7073 [--api-key dev-api-key]``."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from .app import create_app
from .config import SchedulerEmulatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.scheduler_emulator",
        description="Dime.Scheduler emulator: API at the root (X-API-KEY), control plane under /_emulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7073)
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", metavar="KEY",
        help="accepted X-API-KEY value (repeat for several; default dev-api-key)",
    )
    parser.add_argument("--payload-casing", choices=("pascal", "camel"), default="pascal")
    parser.add_argument(
        "--no-import-webhooks", action="store_true", help="changes made through /import fire no webhooks"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SchedulerEmulatorConfig(
        api_keys=tuple(args.api_keys or ("dev-api-key",)),
        payload_casing=args.payload_casing,
        import_fires_webhooks=not args.no_import_webhooks,
    )
    print(f"Dime.Scheduler emulator on http://{args.host}:{args.port} (control plane /_emulator)", flush=True)
    web.run_app(create_app(config), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
