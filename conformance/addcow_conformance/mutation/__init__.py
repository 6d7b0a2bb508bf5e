"""Mutation testing of the reference library against the conformance vectors.

The thirteen hand-written mutants of :mod:`addcow_conformance.mutants` show that the vectors
bite somewhere; this package measures how much of the library's behaviour they pin. It makes
small AST mutations of the format, engine and operation modules (:mod:`.mutate`), runs the
harness over the vectors for each in a forked child with the in-process reference adapter
(:mod:`.run`, :mod:`.loader`), checks the survivors against a reviewed ledger of reasons
(:mod:`.ledger`), and publishes the score per module on the docs (:mod:`.render`). Run it with
``tox -e mutation`` or ``python -m addcow_conformance.mutation run``.
"""

from __future__ import annotations
