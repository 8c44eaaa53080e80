"""Privacy: what evidence may show.

Classification of columns, masking of values (one ``EvidenceMasker``), and scrubbing of
secrets from everything that leaves a run.
"""
