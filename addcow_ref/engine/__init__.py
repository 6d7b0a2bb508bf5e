"""The engine: opening an add-cow image and doing copy-on-write I/O on it.

``fileio`` carries every byte to and from the files, ``bitmapcache`` holds the bitmap in
chunks, ``backing`` opens backing files by declared format, ``legacy`` opens version 1 images
and ``image`` is :class:`~addcow_ref.engine.image.AddCowImage`. It builds on
:mod:`addcow_ref.format` only.
"""
