"""The engine: opening an add-cow image and doing copy-on-write I/O on it.

``fileio`` carries every byte to and from the files (and answers which parts hold data),
``bitmapcache`` holds the bitmap in chunks, ``backing`` opens backing files by declared format
(``addcowbacking`` is the add-cow one), ``legacy`` reads version 1 headers and ``descriptor``
turns either header version into one ``ImageDescriptor``.
:class:`~addcow_ref.engine.image.AddCowImage` (``image``) is assembled from ``imagebase`` (its
state and shared steps), ``locks``, ``extents`` (map), ``resize`` and ``hydrate``. The engine
builds on :mod:`addcow_ref.format` only.
"""
