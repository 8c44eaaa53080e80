"""``engine: dask``: the partition tasks on a Dask distributed cluster (or a local one).

Each task is submitted with its own key (``runbook-load-<target>-<source>-p<n>-<run>``), no
value from a row or a URL in it; it carries the params' connection entries and the worker
resolves the URLs from its own environment. A task that raises is retried ``retries`` times; a
worker that dies mid-task (a SIGKILL, a lost machine) makes the scheduler run the task again
elsewhere, and the task continues from its partition's checkpoint. A partition that keeps failing
fails the stage, its key range named.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from runbook_lib.config.params import DaskParams, LoadedParams
from runbook_lib.errors import PartitionFailedError
from runbook_lib.mapping.model import LoadedSpec
from runbook_lib.privacy.scrub import redact_text
from runbook_lib.scale import partitioned
from runbook_lib.scale.task import Connection, LoadTask, run_task


def run_on_worker(task: LoadTask) -> dict:
    """The task as a worker runs it: the partition's load, the worker's address recorded."""
    from distributed import get_worker

    return run_task(task, worker=get_worker().address)


@contextmanager
def client_for(settings: DaskParams) -> Iterator:
    """A client of the configured scheduler, or of a ``LocalCluster`` of worker processes."""
    from distributed import Client, LocalCluster

    if settings.scheduler is not None:
        with Client(settings.scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=settings.local_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def executor(client, retries: int) -> partitioned.Executor:
    """Run tasks on ``client``'s cluster, all at once; a partition failing for good is named."""
    from distributed import wait

    def run(tasks: list[LoadTask]) -> None:
        futures = {
            task.label: client.submit(
                run_on_worker, task, key=task.key, pure=False, retries=retries
            )
            for task in tasks
        }
        wait(list(futures.values()))
        failed = {
            label: redact_text(f"{type(f.exception()).__name__}: {f.exception()}")
            for label, f in futures.items()
            if f.status != "finished"
        }
        for future in futures.values():
            future.release()
        if failed:
            listing = "; ".join(f"{label}: {error}" for label, error in failed.items())
            raise PartitionFailedError(
                f"{len(failed)} partition(s) failed after {retries} retries: {listing}",
                failed=failed,
                hint="fix the cause, then resume the run (runbook run --resume RUN): every "
                "partition continues from its checkpoint",
            )

    return run


def connections_of(
    params: LoadedParams, spec: LoadedSpec
) -> tuple[dict[str, Connection], Connection]:
    """What tasks carry to reach the sources (by system) and the target: params entries only."""
    root = str(params.project_root)
    sources = {
        system: Connection(name, params.sources[name], root)
        for system, name in spec.spec.systems.items()
    }
    return sources, Connection("target", params.target, root)


def load(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    params: LoadedParams,
    **options,
) -> partitioned.PartitionedLoadReport:
    """The full load on the cluster ``params.engine.dask`` names (``partitioned.load`` options)."""
    settings = params.engine.dask
    connections, target_connection = connections_of(params, spec)
    with client_for(settings) as client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        return partitioned.load(
            spec,
            sources,
            target,
            connections=connections,
            target_connection=target_connection,
            executor=executor(client, settings.retries),
            engine_name="dask",
            workers=workers,
            partition_rows=settings.partition_rows,
            max_partitions=settings.max_partitions,
            dense_ids=settings.dense_ids,
            **options,
        )


def validate(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    target: sa.Engine,
    *,
    params: LoadedParams,
    **options,
):
    """Validation with each source group's check a task on the cluster (``validate`` options)."""
    from runbook_lib.scale.validation import group_runner
    from runbook_lib.validate.validation import validate as run_validation

    connections, target_connection = connections_of(params, spec)
    with client_for(params.engine.dask) as client:
        options.setdefault("workers", len(client.scheduler_info(n_workers=-1)["workers"]))
        return run_validation(
            spec,
            sources,
            target,
            run_groups=group_runner(client, connections, target_connection),
            **options,
        )
