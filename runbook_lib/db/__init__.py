"""Per-dialect knowledge, in one room.

Type rules, portable column types, value binding and chunk writes, keyed lookups, target
constraints, canonical value text for hashing, and the toolkit's own bookkeeping tables.
"""
