"""Start Azurite (the Azure Storage emulator from npm) as a child process.

Loopback only, ``--skipApiVersionCheck`` (the Python SDKs send a newer API version than Azurite 3.35
knows) and ``--disableTelemetry`` (it would try to reach the internet). Tests run it in memory on
free ports; ``make run`` runs it on the well-known ports 10000-10002.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connection_string(blob: int, queue: int, table: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{ACCOUNT};"
    )


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `npm ci` in the project root (make does it for you)")


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_azurite(
    blob_port: int = 0,
    queue_port: int = 0,
    table_port: int = 0,
    location: Path | None = None,
    log: Path | None = None,
) -> Azurite:
    """Start Azurite and wait until its three ports accept connections (0 = pick a free port)."""
    ports = [p or free_port() for p in (blob_port, queue_port, table_port)]
    args = [
        azurite_binary(),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
        "--skipApiVersionCheck", "--disableTelemetry", "--loose",
    ]
    if location is None:
        args += ["--inMemoryPersistence", "--extentMemoryLimit", "256"]
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    azurite = Azurite(process, *ports)
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {process.returncode} (ports in use?)")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    azurite.stop()
                    raise RuntimeError(f"Azurite did not listen on port {port} within 30 s") from None
                time.sleep(0.05)
    return azurite
