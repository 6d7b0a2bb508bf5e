"""Coverage-guided fuzz targets of the conformance kit, run with atheris by
:mod:`addcow_conformance.fuzz` (``python -m addcow_conformance.fuzz --target NAME``).

Each target is a :class:`~addcow_conformance.fuzzing.common.Target`: a one-input function that
returns on every expected outcome and raises on a finding, a warm-up import, its seed
corpus and its dictionary. The one-input functions need no atheris, so the test suite runs them
on every vector directly. The targets:

* ``checker`` (:mod:`~addcow_conformance.fuzzing.checker`): ``addcow-check`` on any add-cow file
  returns a report and no check raises;
* ``reader`` (:mod:`~addcow_conformance.fuzzing.reader`): the reference library opens, maps and
  reads any add-cow file or refuses it with an ``AddCowError``;
* ``manifest`` (:mod:`~addcow_conformance.fuzzing.manifest`): the harness loads any
  ``manifest.json`` or refuses it with a ``ManifestError``.
"""

from __future__ import annotations

from addcow_conformance.fuzzing.common import Target

__all__ = ["INSTRUMENT", "TARGET_NAMES", "Target", "get_target"]

#: Every target, in the order ``--target all`` runs them.
TARGET_NAMES = ("checker", "reader", "manifest")

#: The packages atheris instruments for each target: the code under test only. Instrumenting
#: construct, click or numpy as well would make every input several times slower for edges that
#: say nothing about add-cow. A table here, not a field of the target, because the target's
#: module must itself be imported under the instrumentation.
INSTRUMENT: dict[str, tuple[str, ...]] = {
    "checker": ("addcow_ref", "addcow_conformance.checker"),
    "reader": ("addcow_ref",),
    "manifest": ("addcow_conformance.harness.manifest", "addcow_conformance.records"),
}


def get_target(name: str) -> Target:
    """The target called ``name`` (its module is imported only now, so a target's code is
    imported under atheris's instrumentation when the runner asks for it there)."""
    if name == "checker":
        from addcow_conformance.fuzzing.checker import TARGET
    elif name == "reader":
        from addcow_conformance.fuzzing.reader import TARGET
    elif name == "manifest":
        from addcow_conformance.fuzzing.manifest import TARGET
    else:
        raise KeyError(f"no fuzz target {name!r} (choose from {', '.join(TARGET_NAMES)})")
    return TARGET
