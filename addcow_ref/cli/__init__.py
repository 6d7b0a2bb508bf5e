"""The tools: the ``addcow`` command, the NBD server and its nbdkit plugin, and the demo.

This is the only part of :mod:`addcow_ref` that may use the conformance kit
(:mod:`addcow_conformance`): the demo, and ``addcow check``, run its checker.
"""
