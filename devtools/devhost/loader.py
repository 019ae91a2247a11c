"""Import the function app and describe its functions through the library's public API only.

Each :class:`~devtools.devhost.DevHost` gets its own module object: ``get_functions()`` may be called
only once per ``FunctionApp``, so a second host of the same app (another root, other settings) must
not reuse the first one's module. The first import uses the module's real name, as ``func start``
does; concurrent hosts of the same module get a private copy under an alias.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

from .errors import DevHostError

TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
OUTPUTS = ("http", "queue")  # output binding types the dev host can honour
_aliases = itertools.count(1)


@dataclass(frozen=True)
class OutputBinding:
    name: str  # parameter name or "$return"
    type: str
    raw: dict[str, Any]


@dataclass
class FunctionSpec:
    """One function of the app, as the host sees it."""

    name: str
    trigger_type: str
    trigger: Any  # the decorator's trigger object: .route/.methods/.auth_level, .queue_name, .schedule...
    trigger_param: str
    user_function: Callable[..., Any]
    outputs: list[OutputBinding] = field(default_factory=list)
    bindings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


@dataclass
class LoadedApp:
    module: ModuleType
    functions: list[FunctionSpec]
    module_name: str

    def unload(self) -> None:
        """Forget the module so the next host imports a fresh copy (sibling modules stay cached)."""
        if sys.modules.get(self.module_name) is self.module:
            del sys.modules[self.module_name]


def _import_fresh(module_name: str, root: Path) -> tuple[ModuleType, str]:
    root_str = str(root.resolve())
    if root_str not in sys.path:
        sys.path.insert(0, root_str)  # like the worker: the script root is importable
    if module_name not in sys.modules:
        try:
            return importlib.import_module(module_name), module_name
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):  # the app itself, not its imports
                raise DevHostError(f"app module '{module_name}' not found under {root}") from exc
            raise
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or spec.loader is None:
        raise DevHostError(f"cannot import app module '{module_name}' from {root}")
    alias = f"{module_name}__devhost{next(_aliases)}"  # same package, so relative imports still work
    copy_spec = importlib.util.spec_from_file_location(alias, spec.origin)
    assert copy_spec is not None and copy_spec.loader is not None
    module = importlib.util.module_from_spec(copy_spec)
    sys.modules[alias] = module
    try:
        copy_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[alias]
        raise
    return module, alias


def _spec_of(fn: Any) -> FunctionSpec:
    name = fn.get_function_name()
    raw = [json.loads(b) for b in fn.get_raw_bindings()]
    trigger = fn.get_trigger()
    trigger_type = getattr(trigger, "type", None)
    if trigger_type not in TRIGGERS:
        raise DevHostError(f"function '{name}': trigger type {trigger_type!r} is not supported by the dev host")
    outputs: list[OutputBinding] = []
    for b in raw:
        if b.get("direction") in ("OUT", 1, "INOUT") and b["name"] != trigger.name:
            if b.get("type") not in OUTPUTS:
                raise DevHostError(f"function '{name}': binding type {b.get('type')!r} is not supported by the dev host")
            outputs.append(OutputBinding(b["name"], b["type"], b))
        elif b.get("direction") in ("IN", 0) and b["name"] != trigger.name:
            raise DevHostError(f"function '{name}': input binding {b.get('type')!r} is not supported by the dev host")
    user_function = fn.get_user_function()
    spec = FunctionSpec(name, trigger_type, trigger, trigger.name, user_function, outputs, raw)
    _check_parameters(spec)
    return spec


def _check_parameters(spec: FunctionSpec) -> None:
    """Every parameter must be bindable, as the worker checks at indexing time."""
    bindable = {spec.trigger_param, "context", *(o.name for o in spec.outputs)}
    for p in inspect.signature(spec.user_function).parameters.values():
        if p.name not in bindable and p.default is inspect.Parameter.empty:
            raise DevHostError(f"function '{spec.name}': parameter '{p.name}' matches no binding")


def load_app(app_ref: str, root: Path, only: tuple[str, ...] | None = None) -> LoadedApp:
    """Import ``module:attribute`` (default attribute ``app``) and call ``get_functions()`` once."""
    module_name, _, attr = app_ref.partition(":")
    module, loaded_name = _import_fresh(module_name, root)
    app = getattr(module, attr or "app", None)
    if not isinstance(app, func.FunctionApp):
        raise DevHostError(f"'{app_ref}' is not an azure.functions.FunctionApp")
    specs = [_spec_of(fn) for fn in app.get_functions()]
    if only is not None:  # host.json "functions" restricts what is loaded
        wanted = {n.lower() for n in only}
        specs = [s for s in specs if s.name.lower() in wanted]
    return LoadedApp(module, specs, loaded_name)
