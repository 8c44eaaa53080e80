"""The mapping spec, from YAML to what every stage executes.

Its YAML model (``model``), its check against live schemas (``check``), and the one compiled
form (``compiled``, with its column-at-a-time path in ``columns``).
"""
