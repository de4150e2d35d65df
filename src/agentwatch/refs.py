"""Resolve ``"module:attribute"`` or ``"path/to/file.py:attribute"`` references by import, never ``eval``.

Used for custom scorers in datasets and for every command that takes an agent (``agentwatch eval --agent``,
``serve``, ``worker``). A dotted attribute (``module:factory.agent``) is followed one name at a time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class LoadError(ValueError):
    """A ``module:attribute`` reference that cannot be resolved; the message says why and what to fix."""


def load_object(reference: str, *, base_dir: Path | None = None) -> Any:
    """Import the object ``reference`` names.

    ``module.path:attr`` imports a module (the current directory is importable, as with
    ``python -m``); ``some/file.py:attr`` loads that file, relative to ``base_dir`` first, then to the
    current directory. Raises ``LoadError`` with a clear message on any failure.
    """
    module_part, sep, attr_path = reference.rpartition(":")
    if not sep or not module_part or not attr_path:
        raise LoadError(
            f"{reference!r} is not a reference: write it as 'package.module:name' or 'path/to/file.py:name'."
        )
    module = _load_file(module_part, base_dir) if module_part.endswith(".py") else _import(module_part)
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(
                f"{reference!r}: {module_part!r} has no attribute {part!r}; check the name after ':'."
            ) from None
    return obj


def load_agent(
    reference: str, accepts: Callable[[object], bool] | None = None, what: str = "an agentwatch.Agent"
) -> Any:
    """The agent ``reference`` names: the object itself, or what a zero-argument factory returns.

    ``accepts`` says what counts as an agent (default: an ``agentwatch.Agent``). Raises ``LoadError``.
    """
    if accepts is None:
        from agentwatch.agent import Agent

        def accepts(obj: object) -> bool:
            return isinstance(obj, Agent)

    obj = load_object(reference)
    if not accepts(obj) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise LoadError(f"{reference}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not accepts(obj):
        raise LoadError(
            f"{reference} is a {type(obj).__name__}, not an agent: point it at {what} or a function that returns one."
        )
    return obj


def _import(name: str) -> Any:
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise LoadError(
            f"cannot import module {name!r} ({exc}); run from the directory that contains it, "
            "or give a file path such as 'path/to/file.py:name'."
        ) from exc


def _load_file(file: str, base_dir: Path | None) -> Any:
    candidates = [base_dir / file] if base_dir is not None else []
    candidates.append(Path(file))
    path = next((p.resolve() for p in candidates if p.is_file()), None)
    if path is None:
        tried = ", ".join(str(p) for p in candidates)
        raise LoadError(f"no such file {file!r} (tried {tried}).")
    module_name = f"_agentwatch_ref_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {path} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise LoadError(f"loading {path} failed: {type(exc).__name__}: {exc}") from exc
    return module
