"""Validation: proof that the target holds what the sources say.

Accounting from independent counts, every row rebuilt through the mapping and compared by key
range, aggregates, survivorship and referential integrity.
"""
