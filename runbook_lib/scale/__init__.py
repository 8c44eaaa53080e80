"""Past one machine: a full load cut into key-range partitions, run as tasks on Dask distributed.

``plan`` cuts each source into key ranges of about equal row counts (from the source) and records
them in the target; ``partitioned`` coordinates a partitioned load and runs one partition (the
same loader code as a local load); ``dask_engine`` runs the tasks on a cluster (``engine: dask``).
"""
