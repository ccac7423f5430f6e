"""The ``tradeguard`` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tradeguard import __version__
from tradeguard.errors import TradeguardError

__all__ = ["build_parser", "main"]



def _command_modules() -> list[Any]:
    """Every ``tradeguard._cli._<name>`` module that defines ``COMMAND``, by ``ORDER``.

    A subcommand is one module: ``COMMAND`` (its name), ``ORDER`` (its place in
    ``--help``), a docstring (its help), ``add_arguments(parser)`` and ``run(args) -> int``.
    Heavy imports live inside ``run`` so that ``tradeguard --help`` stays fast.
    """
    modules = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "COMMAND"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.COMMAND))

EPILOG = """\
examples:
  tradeguard demo                                   the main job on built-in defaults
  tradeguard rules                                  the transition table
  tradeguard run --scenario v10 --policy constant:SELL_PARTIAL --seed 0
  tradeguard check --scenario v10                   the invariant gate
  tradeguard check --env anytrading-stocks          ... on someone else's env
  tradeguard audit-reward --scenario v10.1          what the reward makes optimal
  tradeguard audit-policy --policy constant:SELL_PARTIAL --scenario v10
  tradeguard train --algo maskable-ppo --steps 20000 --out runs/m1

exit status: 0 success, 1 a check or audit failed, 2 bad usage or input,
141 stdout was closed early (e.g. piped into head), as if killed by SIGPIPE.
"""

EXIT_BROKEN_PIPE = 141
"""Exit status when the reader of stdout leaves early (``tradeguard run ... | head``): 128 +
SIGPIPE, what a shell reports for a program SIGPIPE ends (``yes | head``). Not 1, which says
that a check failed; under ``set -o pipefail`` a script still sees that the output was cut."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeguard",
        description="Property-based simulation and invariant testing for RL trading environments.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        name: str = module.COMMAND  # type: ignore[attr-defined]
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)  # type: ignore[attr-defined]
        p.set_defaults(_run=module.run)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None, *, on_report: Callable[[Any], None] | None = None) -> int:
    """Entry point of the ``tradeguard`` console script; returns the exit status.

    ``on_report``, for a caller in the same process (``tradeguard demo``), receives the
    report object of the checking commands (check, audit-reward, audit-policy).
    """
    parser = build_parser()
    argv = _join_negative_lists(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
        args.on_report = on_report
        try:
            status: int = args._run(args)
        except TradeguardError as exc:
            print(f"tradeguard {args.command}: error: {exc}", file=sys.stderr)
            status = 2
        sys.stdout.flush()  # inside the try: what is still buffered may meet a closed pipe too
    except BrokenPipeError:  # every subcommand's output, piped into a reader that left early
        return _stdout_closed()
    return status


_NEGATIVE_LIST = re.compile(r"-\d[\d,x\s-]*")
"""A value such as ``-5,10``: argparse takes it for an option (it is not a plain negative number)."""


def _join_negative_lists(argv: list[str]) -> list[str]:
    """``--prices -5,10`` as ``--prices=-5,10``, for the options whose value is a list of integers.

    argparse reads a value that starts with ``-`` (and is not a single number) as an
    option, and refuses with "expected one argument". Joined, the value reaches the
    command, whose own check says what is wrong with it (a negative price, action).
    """
    options = {opt for m in _command_modules() for opt in getattr(m, "NEGATIVE_VALUE_OPTIONS", ())}
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        if token in options and i + 1 < len(argv) and _NEGATIVE_LIST.fullmatch(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _stdout_closed() -> int:
    """The reader of stdout left (``tradeguard ... | head``): exit quietly, no traceback.

    The recipe of the Python docs (library/signal, "Note on SIGPIPE"): point stdout's file
    descriptor at devnull, so that the interpreter's last flush of what is still buffered
    succeeds instead of printing another BrokenPipeError on its way out.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout has no file descriptor (replaced in-process)
        pass
    return EXIT_BROKEN_PIPE
