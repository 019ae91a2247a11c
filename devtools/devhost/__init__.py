"""A small stand-in for the Azure Functions host (``func start``) for the Python v2 model.

Core Tools cannot be installed offline, so ``make run`` and the tests run the function app here,
with the real host's semantics (HTTP routing and keys, queue polling/retries/poison, timers, the
admin API). Nothing in ``functions/`` or ``connector/`` may import this package.

CLI: ``python -m devtools.devhost [--app function_app:app] [--root .] [--settings local.settings.json]
[--host 127.0.0.1] [--port 7071] [--no-timers] [-v]``.
Python: ``with DevHost("pkg.module:app", root, settings={...}, port=0, timers=False) as host: host.url``.

App settings read (besides the app's own): ``AzureWebJobsStorage`` (or a trigger's ``connection``;
also ``<name>__queueServiceUri`` / ``<name>__accountName`` / ``<name>__clientId`` with
DefaultAzureCredential), ``%NAME%`` settings in routes, queue names and schedules,
``DEVHOST_FUNCTION_KEY`` (default ``dev-function-key``), ``DEVHOST_MASTER_KEY`` (default
``dev-master-key``), ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` (bytes, default 100 MB),
``PYTHON_THREADPOOL_THREAD_COUNT``, ``AzureWebJobs.<function>.Disabled``,
``DEVHOST_TRUST_CLIENT_PRINCIPAL`` (default true: a client-sent principal header counts as a session,
so tests can stand in for Easy Auth; false strips it as Azure does; see ``easyauth.py``).

host.json: ``extensions.http.routePrefix``; ``extensions.queues.batchSize``, ``newBatchThreshold``,
``maxPollingInterval``, ``visibilityTimeout``, ``maxDequeueCount``, ``messageEncoding``;
``functions`` (load only these). local.settings.json: ``Values``, ``IsEncrypted``,
``Host.LocalHttpPort`` (CLI default port).
"""

from __future__ import annotations

from .errors import DevHostError
from .host import DevHost
from .http import DEFAULT_MIDDLEWARES

__all__ = ["DEFAULT_MIDDLEWARES", "DevHost", "DevHostError"]
