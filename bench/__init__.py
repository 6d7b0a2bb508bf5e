"""Benchmarks of addcow against real peers and physical limits (run on demand: ``python -m bench``).

Every scenario measures a subject and its baseline in the same process and session, interleaved,
and reports ratios of medians: these machines are shared and noisy, so a lone absolute time means
little. Results go to ``bench/results/latest.json`` and the docs page
``docs/guides/benchmarks.rst``.
"""

from __future__ import annotations
