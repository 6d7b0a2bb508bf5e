"""The format layer: the add-cow layout and its rules, with no I/O beyond reading bytes handed in.

``constants`` (magic, versions, feature bits), ``schema`` (the construct structs, the single
source of truth of the layout), ``layout`` (tables derived from the schema), ``header`` (the
parsed header model), ``validate`` (every header-level rule as a predicate), ``bitmap`` (bit
arithmetic over bitmap bytes), ``errors`` and ``rules`` (the rule registry extracted from
``spec/``). Nothing here imports the engine, the operations or the tools.
"""
