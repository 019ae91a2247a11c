"""`make run`: the whole local stack on the contract ports, seeded with a demo tenant.

Starts Azurite (10000-10002, data under .run/azurite), the Graph emulator (7072), the Dime.Scheduler
emulator (7073) and the dev host running the function app (7071); seeds the demo tenant; prints the
URLs; and on Ctrl-C (or SIGTERM) stops every child process. Each child logs to .run/<name>.log.
`local.settings.json` is created from the sample on first run and never overwritten.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from devtools.azurite import connection_string, start_azurite
from devtools.local_settings import SAMPLE, local_values
from devtools.seed import seed_demo_tenant

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
HOST = "127.0.0.1"
PORTS = {"devhost": 7071, "graph": 7072, "scheduler": 7073, "blob": 10000, "queue": 10001, "table": 10002}


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def wait_for_http(url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers any HTTP status (the server is up), or fail with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class Stack:
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(RUN_DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it for its lifetime
        process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        self.processes[name] = process
        return process

    def stop(self) -> None:
        self.stopping = True
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                print(f"  stopped {name}")


def ensure_local_settings() -> Path:
    settings = ROOT / "local.settings.json"
    if not settings.exists():
        shutil.copyfile(SAMPLE, settings)
        print(f"created {settings.name} from {SAMPLE.name}")
    return settings


def write_port_settings(ports: dict[str, int], graph_url: str, scheduler_url: str, app_url: str) -> Path:
    """Settings for a stack on non-contract ports (the user's local.settings.json stays untouched)."""
    import json

    values = local_values(graph_url=f"{graph_url}/v1.0", scheduler_url=scheduler_url, public_url=app_url,
                          storage=connection_string(ports["blob"], ports["queue"], ports["table"]))
    path = RUN_DIR / "ports.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-seed", action="store_true", help="start empty (no demo tenant)")
    parser.add_argument("--ports", type=lambda v: [int(p) for p in v.split(",")], metavar="APP,GRAPH,DS,BLOB,QUEUE,TABLE",
                        help="other ports than the contract ones (tests); settings then come from .run/ports.settings.json")
    args = parser.parse_args(argv)
    ports = dict(zip(PORTS, args.ports, strict=True)) if args.ports else dict(PORTS)

    busy = [f"{name} ({port})" for name, port in ports.items() if port_in_use(port)]
    if busy:
        print("Ports already in use: " + ", ".join(busy) + ". Is another `make run` still running?", file=sys.stderr)
        return 1
    RUN_DIR.mkdir(exist_ok=True)
    settings_file = ensure_local_settings()
    stack = Stack()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts `make run` in the background leaves SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    azurite = None
    try:
        print("starting Azurite ...")
        # A stack on other ports (a test) keeps Azurite in memory: the developer's data stays untouched.
        azurite = start_azurite(ports["blob"], ports["queue"], ports["table"],
                                location=None if args.ports else RUN_DIR / "azurite",
                                log=RUN_DIR / "azurite.log")
        py = sys.executable
        print("starting the Graph and Dime.Scheduler emulators ...")
        graph = stack.spawn("graph-emulator", [py, "-m", "devtools.graph_emulator", "--host", HOST,
                                               "--port", str(ports["graph"])])
        scheduler = stack.spawn("scheduler-emulator", [py, "-m", "devtools.scheduler_emulator", "--host", HOST,
                                                       "--port", str(ports["scheduler"])])
        graph_url = f"http://{HOST}:{ports['graph']}"
        scheduler_url = f"http://{HOST}:{ports['scheduler']}"
        wait_for_http(f"{graph_url}/_emulator/stats", process=graph)
        wait_for_http(f"{scheduler_url}/_emulator/stats", process=scheduler)
        if not args.no_seed:
            summary = seed_demo_tenant(graph_url, scheduler_url)
            print(f"seeded demo tenant: {summary}")
        print("starting the function app under the dev host ...")
        app_url = f"http://{HOST}:{ports['devhost']}"
        if args.ports:
            settings_file = write_port_settings(ports, graph_url, scheduler_url, app_url)
        devhost = stack.spawn("devhost", [py, "-m", "devtools.devhost", "--app", "function_app:app", "--root", str(ROOT),
                                          "--settings", str(settings_file), "--host", HOST, "--port", str(ports["devhost"])])
        wait_for_http(f"{app_url}/admin/host/status", timeout=120, process=devhost)
        # Track the demo resources now rather than at the next 15-minute tick (as an admin would run it).
        httpx.post(f"{app_url}/admin/functions/sync_resources", json={"input": ""}, timeout=30).raise_for_status()
        print(
            "\nThe local stack is up:\n"
            f"  function app        {app_url}/api/health  (dev function key: dev-function-key)\n"
            f"  settings page       {app_url}/api/ui/      (dev sign-in: {app_url}/.auth/login/dev)\n"
            f"  admin monitor       {app_url}/api/ui/admin\n"
            f"  Graph emulator      {graph_url}/v1.0   control plane {graph_url}/_emulator/stats\n"
            f"  Dime.Scheduler emu  {scheduler_url}   (X-API-KEY: dev-api-key)  control plane {scheduler_url}/_emulator/stats\n"
            f"  Azurite             blob {ports['blob']}, queue {ports['queue']}, table {ports['table']}\n"
            f"  logs                {RUN_DIR}/*.log\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while True:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; see {RUN_DIR / (name + '.log')}",
                          file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        if azurite is not None:
            azurite.stop()
            print("  stopped azurite")


if __name__ == "__main__":
    sys.exit(main())
