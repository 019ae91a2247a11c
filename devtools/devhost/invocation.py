"""Run one invocation the way the Python worker does, and log it the way the host does.

Arguments are bound by parameter name: the trigger's binding name, ``context``, and output bindings
(``func.Out``). Coroutine functions are awaited on the host loop; plain functions run in a thread
pool (size ``PYTHON_THREADPOOL_THREAD_COUNT``, like the worker). Every invocation produces one
``Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=...ms)`` line on the ``devhost``
logger; a failure carries the traceback.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import _abc

from .loader import FunctionSpec, OutputBinding

log = logging.getLogger("devhost")

OutputSender = Callable[[OutputBinding, Any], Awaitable[None]]


class TraceContext(_abc.TraceContext):
    def __init__(self, invocation_id: str) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{invocation_id.replace('-', '')[:16]}-01"

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class RetryContext(_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """A concrete ``func.Context`` (the library only ships the abstract class)."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = TraceContext(invocation_id)
        self._retry_context = RetryContext()
        self._tls = threading.local()
        self._tls.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return self._retry_context

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]  # the stub says type
        return self._tls


class Out(func.Out[Any]):
    """A concrete ``func.Out`` collecting an output binding's value."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


def thread_pool() -> ThreadPoolExecutor:
    size = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    return ThreadPoolExecutor(max_workers=int(size) if size else None, thread_name_prefix="devhost-fn")


class Invoker:
    """Invokes user functions; shared by the HTTP, queue, timer and admin paths."""

    def __init__(self, root: Path, pool: ThreadPoolExecutor, send_output: OutputSender) -> None:
        self.root = root
        self.pool = pool
        self.send_output = send_output

    async def invoke(self, spec: FunctionSpec, trigger_value: Any, detail: str = "") -> Any:
        """Run the function; log one line; re-raise the user's exception after logging it."""
        invocation_id = str(uuid.uuid4())
        context = InvocationContext(invocation_id, spec.name, str(self.root))
        outs = {o.name: Out() for o in spec.outputs if o.name != "$return"}
        kwargs = self._arguments(spec, trigger_value, context, outs)
        suffix = f", {detail}" if detail else ""
        log.debug("Executing 'Functions.%s' (Id=%s%s)", spec.name, invocation_id, suffix)
        started = time.perf_counter()
        try:
            if spec.is_async:
                result = await spec.user_function(**kwargs)
            else:
                call = functools.partial(contextvars.copy_context().run, spec.user_function, **kwargs)
                result = await asyncio.get_running_loop().run_in_executor(self.pool, call)
            if inspect.isawaitable(result):  # a sync wrapper returning a coroutine: the worker awaits it too
                result = await result
            await self._send_outputs(spec, outs, result)
        except Exception:
            ms = round((time.perf_counter() - started) * 1000)
            log.exception("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms%s)", spec.name, invocation_id, ms, suffix)
            raise
        ms = round((time.perf_counter() - started) * 1000)
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms%s)", spec.name, invocation_id, ms, suffix)
        return result

    @staticmethod
    def _arguments(spec: FunctionSpec, trigger_value: Any, context: InvocationContext, outs: dict[str, Out]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for name in inspect.signature(spec.user_function).parameters:
            if name == spec.trigger_param:
                kwargs[name] = trigger_value
            elif name in outs:
                kwargs[name] = outs[name]
            elif name == "context":
                kwargs[name] = context
        return kwargs

    async def _send_outputs(self, spec: FunctionSpec, outs: dict[str, Out], result: Any) -> None:
        for binding in spec.outputs:
            if binding.type == "http":
                continue  # the HTTP layer converts the response itself
            value = result if binding.name == "$return" else outs[binding.name].get()
            if value is not None:
                await self.send_output(binding, value)
