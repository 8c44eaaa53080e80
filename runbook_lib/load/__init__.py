"""Loading the target, reversibly.

The streaming loader with checkpoints and quarantine, references and merges, incremental sync,
foreign-key suspension, and the snapshot that makes a load reversible.
"""
