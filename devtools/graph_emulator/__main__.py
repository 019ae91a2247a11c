"""``python -m devtools.graph_emulator --host 127.0.0.1 --port 7072 [--token dev-graph-token]``."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from . import GraphEmulatorConfig, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.graph_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--token", default="dev-graph-token",
                        help="the accepted bearer token; an empty string accepts any token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = GraphEmulatorConfig(token=args.token or None)
    web.run_app(create_app(config), host=args.host, port=args.port, access_log=None,
                print=lambda _: print(f"Graph emulator on http://{args.host}:{args.port}/v1.0", flush=True))


if __name__ == "__main__":
    main()
