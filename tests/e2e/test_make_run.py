"""`make run`'s orchestrator end to end: starts everything, seeds the demo tenant, answers health, and
stops every child process on Ctrl-C. Runs on free ports so a developer's own `make run` is untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devtools.azurite import free_port
from devtools.local_stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
GRAPH = {"Authorization": "Bearer dev-graph-token"}


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(t) for t in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_stack_starts_seeds_serves_health_and_stops_cleanly_on_ctrl_c() -> None:
    ports = [free_port() for _ in range(6)]
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.stack", "--ports", ",".join(map(str, ports))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while not any("Press Ctrl-C to stop." in line for line in output):
            line = process.stdout.readline()
            assert line or process.poll() is None, "stack exited early:\n" + "".join(output)
            output.append(line)
            assert time.monotonic() < deadline, "stack did not come up in 120 s:\n" + "".join(output)
        text = "".join(output)
        app, graph, scheduler = (f"http://127.0.0.1:{p}" for p in ports[:3])
        assert f"{app}/api/health" in text and f"{graph}/v1.0" in text and scheduler in text
        assert "seeded demo tenant: 4 Graph users" in text

        # Healthy within a minute of "Press Ctrl-C" (on a loaded machine a dependency's first answer can
        # lag); the last answer is shown if it never is.
        answers: list[httpx.Response] = []

        def healthy() -> bool:
            answers.append(httpx.get(f"{app}/api/health", timeout=30))
            return answers[-1].status_code == 200 and answers[-1].json()["status"] == "ok"

        try:
            wait_until(healthy, 60, interval=2, what="the stack's health to be ok")
        except AssertionError:
            raise AssertionError(f"{answers[-1].status_code}: {answers[-1].text}\n" + "".join(output)) from None
        users = httpx.get(f"{graph}/v1.0/users", headers=GRAPH, timeout=10).json()
        assert {u["userPrincipalName"] for u in users["value"]} >= {"alice@contoso.example", "bob@contoso.example"}
        resources = httpx.get(f"{scheduler}/resource", headers={"X-API-KEY": "dev-api-key"}, timeout=10).json()
        assert sum(1 for r in resources if r["exchangeIntegrationEnabled"]) == 3

        # The demo tenant syncs both ways right away: Outlook items reach the board, appointments reach Outlook.
        wait_until(lambda: any(a.get("Subject") == "Customer kick-off" for a in
                               httpx.get(f"{scheduler}/_emulator/appointments", timeout=10).json()),
                   timeout=60, what="Alice's Outlook meeting on the planning board")
        alice = httpx.get(f"{graph}/v1.0/users/alice@contoso.example", headers=GRAPH, timeout=10).json()["id"]
        wait_until(lambda: any(e["subject"] == "Boiler maintenance, Main St 12" for e in
                               httpx.get(f"{graph}/v1.0/users/{alice}/events", headers=GRAPH, timeout=10).json()["value"]),
                   timeout=60, what="the planner's appointment in Alice's Outlook")

        spawned = children(process.pid)
        assert len(spawned) >= 4  # Azurite, both emulators, the dev host
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "stopped devhost" in rest and "stopped azurite" in rest
    still_running = [pid for pid in spawned if alive(pid)]
    assert still_running == []
