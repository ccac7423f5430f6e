"""The worker of ``tradeguard mutate``: runs ``tradeguard check`` with mutated modules imported.

The parent runs this file as ``__main__`` (``python -c`` that reads and executes it, so
that the ``tradeguard`` package is not imported) in a new process per mutant, and writes
a JSON job on its stdin::

    {"argv": ["check", ...], "serve": {"/real/path.py": "source text", ...},
     "mutated": "/real/path.py" or null, "log": "/tmp/.../log.jsonl", "parent": 1234}

Before anything else is imported, an import hook is put first on ``sys.meta_path``. It
asks the other finders where each module would come from (so setuptools' editable
finder, ``package-dir`` mappings, namespace packages and ``sys.path`` all keep their
say) and, when a module's file is one of ``serve``, loads it from the given text
instead of the file: compiled in memory, never written to ``__pycache__``, with
``__file__`` still the real path. The user's files are only ever read.

Each module served is logged (one JSON line, flushed at once) so that the parent knows
the mutant really was what ran; at the end the log names any watched file that was
imported around the hook. A watchdog thread ends the process if the parent dies, so
that killing ``tradeguard mutate`` leaves no worker behind.

Only the standard library is imported before the hook is in place: a mutated module of
tradeguard itself must not be imported early.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import linecache
import os
import sys
import threading
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_PARENT_POLL = 0.25
"""Seconds between checks that the parent process is still alive."""

EXIT_PARENT_GONE = 75
"""Exit status of a worker whose parent died: it stops at once."""


class _Log:
    """Append-only JSON lines, flushed per line: survives the worker being killed mid-run."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's lifetime)

    def write(self, **event: Any) -> None:
        self._file.write(json.dumps({**event, "pid": os.getpid()}) + "\n")
        self._file.flush()


class _TextLoader(importlib.machinery.SourceFileLoader):
    """Loads one module from source text held in memory, as if it were its file.

    A ``SourceFileLoader`` for everything else (``__file__``, packages, resources read
    with ``importlib.resources``, as the env's data files are), except that the code is
    compiled from the text, never from the file or its cached bytecode, and no bytecode
    is written.
    """

    def __init__(self, fullname: str, path: str, text: str) -> None:
        super().__init__(fullname, path)
        self.text = text

    def get_code(self, fullname: str) -> Any:
        return compile(self.text, self.path, "exec", dont_inherit=True)

    def get_source(self, fullname: str) -> str:
        return self.text

    def set_data(self, path: str, data: Any, *, _mode: int = 0o666) -> None:
        return None  # never write bytecode of a mutant (nor of the original served in its place)


class _ServeFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: serves the watched files' modules from the given texts."""

    def __init__(self, serve: dict[str, str], mutated: str | None, log: _Log) -> None:
        self.serve = serve
        self.mutated = mutated
        self.log = log
        self.served: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec: importlib.machinery.ModuleSpec | None = None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is not None:
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        if spec is None or not spec.has_location or not spec.origin:
            return spec
        real = os.path.realpath(spec.origin)
        text = self.serve.get(real)
        if text is None:
            return spec
        served = importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=_TextLoader(fullname, spec.origin, text),
            submodule_search_locations=spec.submodule_search_locations,
        )
        if served is None:  # pragma: no cover (only for origins without a file suffix)
            return spec
        if real == self.mutated:
            # Tracebacks quote the mutant's lines, not the file's (mtime None: never re-read).
            linecache.cache[spec.origin] = (len(text), None, text.splitlines(keepends=True), spec.origin)
        self.served.add(real)
        self.log.write(event="served", module=fullname, path=real, mutated=real == self.mutated)
        return served


def _watch_parent(parent: int) -> None:
    """End this process as soon as its parent is gone (re-parented: ``getppid`` changes)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(EXIT_PARENT_GONE)
            time.sleep(_PARENT_POLL)

    threading.Thread(target=watch, name="tradeguard-mutate-watchdog", daemon=True).start()


def _bypassed(serve: dict[str, str], served: set[str]) -> list[str]:
    """Watched files that some module in ``sys.modules`` was loaded from without the hook."""
    found = []
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str):
            real = os.path.realpath(origin)
            if real in serve and real not in served:
                found.append(real)
    return sorted(set(found))


def main() -> int:
    job = json.loads(sys.stdin.read())
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (the gate never reads stdin)
    sys.dont_write_bytecode = True
    _watch_parent(int(job["parent"]))
    log = _Log(job["log"])
    serve: dict[str, str] = job["serve"]
    finder = _ServeFinder(serve, job["mutated"], log)
    already = _bypassed(serve, set())
    if already:  # imported before this line ran (a .pth file or sitecustomize): cannot be served
        log.write(event="end", status=None, bypassed=already)
        return 3
    sys.meta_path.insert(0, finder)
    log.write(event="start")
    # Imported only now, after the hook: tradeguard's own modules may be among the mutated.
    from tradeguard._cli import main as cli

    status = 1
    try:
        status = cli(job["argv"])
    finally:
        sys.stdout.flush()
        log.write(event="end", status=status, bypassed=_bypassed(serve, finder.served))
    return status


if __name__ == "__main__":
    sys.exit(main())
