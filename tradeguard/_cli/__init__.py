"""The ``tradeguard`` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tradeguard import __version__
from tradeguard.errors import TradeguardError

__all__ = ["main", "build_parser"]

# (subcommand module, one-line help). Each module defines ``add_arguments(parser)``
# and ``run(args) -> int``; heavy imports live inside ``run``.
COMMANDS: tuple[str, ...] = ("rules", "run")

EPILOG = """\
examples:
  tradeguard rules
  tradeguard run --scenario v10 --policy constant:SELL_PARTIAL --seed 0
  tradeguard run --scenario v10 --policy masked-random --json

exit status: 0 success, 1 a check or audit failed, 2 bad usage or input.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeguard",
        description="Property-based simulation and invariant testing for RL trading environments.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"tradeguard._cli._{name.replace('-', '_')}")
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tradeguard`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args._run(args)
    except TradeguardError as exc:
        print(f"tradeguard {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return status
