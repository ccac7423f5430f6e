"""Mutation testing of the invariant gate: how much would it catch if someone broke the env?

:func:`run_mutation` makes single-operator mutants of source files the env imports
(comparisons, arithmetic, boolean operators, constants: one token changed each), runs
``tradeguard check`` on every mutant in its own process, and reports the kill rate, how
each mutant was killed (by which invariant, by a crash, by a timeout) and every survivor
as a diff. The files on disk are never modified: each process imports the mutated
module from memory through an import hook. ``tradeguard mutate`` is the command;
docs/mutate.md explains how to read its report.

Needs libcst (``pip install 'tradeguard[mutate]'``) to read the sources.

Example:
    >>> from tradeguard.mutate import mutants_of_source
    >>> [m.change for m in mutants_of_source("ok = cash >= cost + fee\\n", "rules.py")]
    ['>= -> >', '+ -> -']
"""

from __future__ import annotations

from tradeguard.mutate._engine import (
    MutantResult,
    MutationReport,
    SourceFile,
    Status,
    default_jobs,
    list_mutants,
    read_sources,
    run_mutation,
)
from tradeguard.mutate._equivalents import Equivalent, load_equivalents, parse_equivalents
from tradeguard.mutate._operators import (
    OPERATORS,
    Mutant,
    mutants_of_source,
    require_libcst,
    sample_mutants,
)
from tradeguard.mutate._runner import OWN_ENV_ID, GateSpec

__all__ = [
    "OPERATORS",
    "OWN_ENV_ID",
    "Equivalent",
    "GateSpec",
    "Mutant",
    "MutantResult",
    "MutationReport",
    "SourceFile",
    "Status",
    "default_jobs",
    "list_mutants",
    "load_equivalents",
    "mutants_of_source",
    "parse_equivalents",
    "read_sources",
    "require_libcst",
    "run_mutation",
    "sample_mutants",
]
