"""Azure Storage clients for the connector's tables and queues.

Locally the connection string points at Azurite; in Azure the app has no storage keys at all
(`allowSharedKeyAccess: false`) and reaches the account with its user-assigned managed identity, the
same identity-based `AzureWebJobsStorage__*` settings the Functions host uses.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connector.config import StorageConfig

# Queue names are a contract with the host bindings and the admin monitor.
EXCHANGE_CHANGES_QUEUE = "exchange-changes"
PLANNING_CHANGES_QUEUE = "planning-changes"
WORK_QUEUES: tuple[str, ...] = (EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE)


def poison_queue_name(queue: str) -> str:
    return f"{queue}-poison"


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _transport() -> RequestsTransport:
    """One HTTP session for every table and queue client. Without proxy variables, its environment is
    read once: `requests` otherwise looks up proxies (with their bypass rules), `.netrc` and the CA
    bundle on every call, 15 % of the CPU of a Table point read. With a proxy configured, requests
    keeps reading the environment per call (its `NO_PROXY` rules need it)."""
    session = requests.Session()
    # Mounted as azure-core mounts its own sessions: retries and redirects are the SDK policies' job.
    adapter = HTTPAdapter(max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if not any(os.environ.get(name) for name in _PROXY_VARIABLES):
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    return RequestsTransport(session=session, session_owner=False)


def _managed_identity(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


class StorageClients:
    """Builds table and queue clients from one `StorageConfig` (connection string or identity)."""

    def __init__(self, config: StorageConfig) -> None:
        self._config = config
        self._credential: TokenCredential | None = None
        if config.connection_string is None:
            self._credential = _managed_identity(config.managed_identity_client_id)
        self._tables: TableServiceClient | None = None
        self._queues: QueueServiceClient | None = None
        self._transport = _transport()

    @property
    def table_service(self) -> TableServiceClient:
        if self._tables is None:
            if self._config.connection_string is not None:
                self._tables = TableServiceClient.from_connection_string(self._config.connection_string.reveal(),
                                                                         transport=self._transport)
            else:
                assert self._config.table_url is not None and self._credential is not None
                self._tables = TableServiceClient(self._config.table_url, credential=self._credential,
                                                  transport=self._transport)
        return self._tables

    @property
    def queue_service(self) -> QueueServiceClient:
        if self._queues is None:
            kwargs: dict[str, Any] = {
                # The Functions host reads base64 text by default (host.json messageEncoding).
                "message_encode_policy": TextBase64EncodePolicy(),
                "message_decode_policy": TextBase64DecodePolicy(),
                "transport": self._transport,
            }
            if self._config.connection_string is not None:
                self._queues = QueueServiceClient.from_connection_string(
                    self._config.connection_string.reveal(), **kwargs
                )
            else:
                assert self._config.queue_url is not None and self._credential is not None
                self._queues = QueueServiceClient(self._config.queue_url, credential=self._credential, **kwargs)
        return self._queues

    def table(self, name: str) -> TableClient:
        return self.table_service.get_table_client(name)

    def queue(self, name: str) -> QueueClient:
        return self.queue_service.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
