"""Sphinx extension: publish the kit's JSON schemas at the URLs their ``$id`` names.

``check-report.schema.json`` and ``harness-results.schema.json`` say where they live
(``"$id": "https://addcow.readthedocs.io/en/<version>/schemas/NAME"``), and a validator or a
reader following that URL must find the very file the kit validates with. After an HTML build
each schema is copied, byte for byte, to the path below the version directory of its ``$id``;
a schema whose ``$id`` is not on the site is a build warning, so it cannot drift off it.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

from addcow_ref.format.rules import DOCS_SITE

logger = logging.getLogger(__name__)

#: ``DOCS_SITE`` + one version directory (``latest``, ``2.0``) + the path inside the site.
_ON_SITE = re.compile(re.escape(DOCS_SITE) + r"[^/]+/(?P<path>.+)")


def schema_paths() -> dict[str, Path]:
    """Site-relative path (from ``$id``) -> schema file, for every schema of the kit."""
    folder = Path(str(resources.files("addcow_conformance").joinpath("schemas")))
    out: dict[str, Path] = {}
    for schema in sorted(folder.glob("*.schema.json")):
        schema_id = str(json.loads(schema.read_text("utf-8")).get("$id", ""))
        match = _ON_SITE.fullmatch(schema_id)
        if match is None:
            logger.warning("%s: $id %r is not a URL on %s", schema, schema_id, DOCS_SITE)
            continue
        out[match["path"]] = schema
    return out


def _copy_schemas(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for rel, schema in schema_paths().items():
        target = Path(app.outdir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(schema, target)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("build-finished", _copy_schemas)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
