"""`BenchStack`: Azurite, both emulators and the dev host as separate processes on free ports.

    with BenchStack.start(run_dir) as stack:
        stack.graph_control("GET", "/stats"); stack.bench("devhost", "GET", "/stats"); ...

Each Python part runs under `devtools.benchstack.launch` (its `/_bench` probe); logs go to
`<run_dir>/<part>.log`. `stack.cpu_seconds()` reads every part's CPU time from /proc (Azurite's
too), so a benchmark can say which process a phase's time went to. The harness talks to the app's
tables and queues with its own `Services` built from the same settings (`stack.services`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from connector.config import load_settings
from connector.services import Services
from devtools.azurite import Azurite, azurite_binary, free_port
from devtools.local_settings import local_values
from devtools.local_stack import wait_until as _wait_until

ROOT = Path(__file__).resolve().parents[2]
GRAPH_TOKEN = "dev-graph-token"
DS_KEY = "dev-api-key"
WEBHOOK_SECRET_SETTING = "SCHEDULER_WEBHOOK_SECRET"
_TICKS = os.sysconf("SC_CLK_TCK")


def wait_until(check: Callable[[], Any], timeout: float = 30, interval: float = 0.1, what: str = "condition") -> Any:
    """`devtools.local_stack.wait_until`, failing with `TimeoutError` (a benchmark reports it, no test asserts)."""
    return _wait_until(check, timeout, interval, what, TimeoutError)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (children not included), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def process_peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def start_quiet_azurite(log: Path) -> Azurite:
    """Azurite in memory on free ports, like `devtools.azurite.start_azurite`, but `--silent`: its
    access log (a line per request) would cost Azurite CPU that real storage never costs the app."""
    ports = [free_port() for _ in range(3)]
    args = [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]), "--queueHost", "127.0.0.1",
            "--queuePort", str(ports[1]), "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
            "--skipApiVersionCheck", "--disableTelemetry", "--loose", "--silent",
            "--inMemoryPersistence", "--extentMemoryLimit", "256"]
    out = open(log, "ab")  # noqa: SIM115 - owned by the child process
    azurite = Azurite(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT), *ports)

    def listening() -> bool:
        if azurite.process.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {azurite.process.returncode}; see {log}")
        for port in ports:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    try:
        wait_until(listening, 30, 0.05, "Azurite to listen")
    except BaseException:
        azurite.stop()
        raise
    return azurite


@dataclass
class Part:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class BenchStack:
    run_dir: Path
    azurite: Azurite
    parts: dict[str, Part] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    # -- start and stop -------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def start(cls, run_dir: Path, **overrides: str) -> Iterator[BenchStack]:
        """Everything started, then stopped when the block ends (whatever happens inside)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        stack = cls._started(run_dir, overrides)
        try:
            yield stack
        finally:
            stack.stop()

    @classmethod
    def _started(cls, run_dir: Path, overrides: dict[str, str], attempts: int = 3) -> BenchStack:
        """A free port is only free until someone takes it: on a machine where other test runs start
        servers too, a part may lose its port between the choice and the bind. Then everything
        started is stopped and the stack starts again on new ports."""
        for attempt in range(1, attempts + 1):
            stack: BenchStack | None = None
            try:
                stack = cls(run_dir, start_quiet_azurite(run_dir / "azurite.log"))
                stack._spawn("graph", [])
                stack._spawn("scheduler", [])
                stack._wait_ready("graph")
                stack._wait_ready("scheduler")
                stack.start_app(**overrides)
                return stack
            except (RuntimeError, TimeoutError):
                if stack is not None:
                    stack.stop()
                if attempt == attempts:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _spawn(self, name: str, extra: list[str], port: int | None = None) -> Part:
        port = port or free_port()
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        role = "devhost" if name.startswith("devhost") else name
        process = subprocess.Popen([sys.executable, "-m", "devtools.benchstack.launch", role, "--port", str(port), *extra],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONHASHSEED": "0"})
        part = Part(name, process, f"http://127.0.0.1:{port}")
        self.parts[name] = part
        return part

    def _wait_ready(self, name: str, timeout: float = 60) -> float:
        """Seconds until the part's probe answers."""
        part = self.parts[name]
        began = time.monotonic()

        def up() -> bool:
            if part.process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {part.process.returncode}; see {self.run_dir / name}.log")
            try:
                return self.http.get(f"{part.url}/_bench/stats", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(up, timeout, 0.02, f"{name} to start")
        except TimeoutError:
            part.process.send_signal(signal.SIGUSR1)  # its threads' stacks into its log, for the post-mortem
            time.sleep(0.5)
            part.stop()
            raise TimeoutError(f"{name} did not answer within {timeout:g} s; its stacks are in "
                               f"{self.run_dir / name}.log") from None
        return time.monotonic() - began

    def app_settings(self, **overrides: str) -> dict[str, str]:
        values = local_values(graph_url=f"{self.parts['graph'].url}/v1.0", scheduler_url=self.parts["scheduler"].url,
                              public_url="http://127.0.0.1:0", storage=self.azurite.connection_string)
        values.update(overrides)
        return values

    def start_app(self, name: str = "devhost", **overrides: str) -> Part:
        """Start (or restart) the dev host with the stack's settings plus `overrides`; a start that
        hangs or fails (a free port taken meanwhile on a busy machine) is tried once more."""
        for attempt in (1, 2):
            try:
                return self._start_app(name, **overrides)
            except (TimeoutError, RuntimeError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start_app(self, name: str, **overrides: str) -> Part:
        if name in self.parts:
            self.parts.pop(name).stop()
        port = free_port()
        values = self.app_settings(**overrides)
        values["CONNECTOR_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        path = self.run_dir / f"{name}.settings.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=1))
        ports = f"{self.azurite.blob_port},{self.azurite.queue_port},{self.azurite.table_port}"
        self._spawn(name, ["--settings", str(path), "--storage-ports", ports], port=port)
        self._wait_ready(name)
        self.settings = values
        self.__dict__.pop("services", None)
        return self.parts[name]

    def stop(self) -> None:
        for part in reversed(list(self.parts.values())):
            part.stop()
        self.parts.clear()
        self.azurite.stop()
        self.http.close()

    # -- addresses and calls ---------------------------------------------------------------------
    @property
    def app_url(self) -> str:
        return self.parts["devhost"].url

    @property
    def graph_url(self) -> str:
        return self.parts["graph"].url

    @property
    def scheduler_url(self) -> str:
        return self.parts["scheduler"].url

    @cached_property
    def services(self) -> Services:
        """The app's tables and queues, as the app sees them (same settings, the harness's own clients)."""
        return Services(load_settings(self.settings))

    def graph_api(self, method: str, path: str, actor: str = "person", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {GRAPH_TOKEN}", "X-Bench-Actor": actor, **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.graph_url}/v1.0{path}", headers=headers, **kwargs)

    def graph_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.graph_url}/_emulator{path}", **kwargs)

    def ds_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-KEY": DS_KEY, **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.scheduler_url}{path}", headers=headers, **kwargs)

    def ds_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.scheduler_url}/_emulator{path}", **kwargs)

    def bench(self, part: str, method: str, path: str, **kwargs: Any) -> Any:
        """A part's `/_bench` probe (JSON)."""
        response = self.http.request(method, f"{self.parts[part].url}/_bench{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def run_function(self, name: str, input: str = "") -> None:
        """Run a timer or queue function now (the host's admin call; answers at once, runs in the background)."""
        response = self.http.post(f"{self.app_url}/admin/functions/{name}", json={"input": input})
        if response.status_code != 202:
            raise RuntimeError(f"admin call for {name} answered {response.status_code}: {response.text}")

    def invocations(self, function: str, since: float) -> list[dict[str, Any]]:
        found = self.bench("devhost", "GET", "/invocations", params={"since": str(since)})["value"]
        return [i for i in found if i["function"] == function]

    def run_function_and_wait(self, name: str, input: str = "", timeout: float = 300) -> dict[str, Any] | None:
        """Run a function through the admin call and wait for its invocation to end; None on timeout."""
        since = time.time()
        self.run_function(name, input)
        try:
            found: list[dict[str, Any]] = wait_until(lambda: self.invocations(name, since), timeout, 0.05, f"{name} to finish")
        except TimeoutError:
            return None
        return found[0]

    def reset_probes(self) -> None:
        for name in ("graph", "scheduler", "devhost"):
            self.bench(name, "POST", "/reset")

    def queue_depth(self, queue: str) -> int:
        """Messages in the queue: waiting, running, and delayed ones (a follow-up due later) alike."""
        return self.services.work_queues.depth(queue)

    def queues_idle(self, *queues: str) -> bool:
        """No message ready to run, and no function running in the dev host. Delayed messages (sent
        with a visibility delay, e.g. a mailbox run's follow-up for its lease's expiry) do not count:
        they are work for later, not work in hand."""
        if self.bench("devhost", "GET", "/stats")["in_flight"]:
            return False
        return not any(next(iter(self.services.storage.queue(q).peek_messages(max_messages=1)), None) for q in queues)

    # -- where the time went ---------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        pids = {name: part.process.pid for name, part in self.parts.items()}
        pids["azurite"] = self.azurite.process.pid
        return pids

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each part (and by this harness process)."""
        out = {name: process_cpu_seconds(pid) for name, pid in self.pids().items()}
        out["harness"] = process_cpu_seconds(os.getpid())
        return out

    def handler_seconds(self) -> dict[str, float]:
        """Seconds spent inside each emulator's request handlers so far (since the last probe reset)."""
        return {name: float(self.bench(name, "GET", "/stats")["handlers"]["total_seconds"]) for name in ("graph", "scheduler")}

    def devhost_peak_rss_mb(self) -> float:
        return process_peak_rss_mb(self.parts["devhost"].process.pid)
