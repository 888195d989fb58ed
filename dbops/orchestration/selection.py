"""What a run started by a sensor selects: the scripts the Dagster instance expects to be pending where it runs.

A run stores one planned-materialization event per asset it selects when it is created, and its step looks
at each of them: selecting the whole job, a deployed rollout run that applies one new script to a project
of 200 pays for 200 (bench/rollout_one_more.py). The sensors run in the code server, which may not read the
environments' histories (each secret reaches only its own runs), so they select from the instance's records
instead (expected_pending) and tag the run `dbops/selection=pending`: its step applies whatever the history
table says is pending, selected or not (an environment behind the others, a database restored from a backup),
and records each as a materialization. The selection only saves events; it never decides what is applied.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RepositoryDefinition, RunRequest, RunsFilter, SensorEvaluationContext

from dbops.orchestration.partitions import PARTITION_TAG
from dbops.orchestration.translator import script_keys

TAG_SELECTION = "dbops/selection"
SELECT_PENDING = "pending"  # the run applies every pending script; its asset selection is the expected ones
CHUNK = 50


@dataclass(frozen=True)
class MigrationAssets:
    """The migration assets of loaded definitions in apply order, and the migration checks (`.sql.check`) of each."""

    keys: list[AssetKey]
    checks: Mapping[AssetKey, list[AssetCheckKey]]

    @classmethod
    def of(cls, repository: RepositoryDefinition) -> MigrationAssets:
        scripts = set(script_keys(repository.asset_graph).values())
        keys = [key for key in repository.asset_graph.toposorted_asset_keys if key in scripts]  # one chain: apply order
        checks: dict[AssetKey, list[AssetCheckKey]] = {key: [] for key in keys}
        for assets_def in {id(d): d for d in (repository.assets_defs_by_key[k] for k in keys)}.values():
            for check in sorted(assets_def.check_keys, key=lambda c: c.to_user_string()):
                if check.asset_key in checks:
                    checks[check.asset_key].append(check)
        return cls(keys, checks)

    def checks_of(self, keys: Iterable[AssetKey]) -> list[AssetCheckKey]:
        """The migration checks of `keys` (a run selecting them runs these, not the validate job's)."""
        return [check for key in keys for check in self.checks.get(key, [])]


def sensor_assets(context: SensorEvaluationContext) -> MigrationAssets | None:
    """The migration assets of the definitions the sensor runs in; None when not available."""
    repository = context.repository_def
    return MigrationAssets.of(repository) if repository is not None else None


def expected_pending(
    instance: DagsterInstance, keys: Sequence[AssetKey], partitions: Sequence[str | None], since: float | None = None,
    job_name: str = "migrate",
) -> Mapping[str | None, list[AssetKey] | None]:
    """For each partition (None: the unpartitioned assets) the keys, in order, the run is expected to apply (the last
    key alone when there are none, so that the run still checks the target); None: the whole job.

    The `fresh` keys; an environment with no successful run here (new, or built by Flyway or --direct) selects the
    whole job. A query per script and environment cost more than the planned events it saved."""
    if not keys:
        return {p: None for p in partitions}
    expected_keys = fresh(instance, keys, since) or [keys[-1]]
    expected: dict[str | None, list[AssetKey] | None] = {}
    for partition in partitions:
        migrated = partition is None or instance.get_runs(
            RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS], tags={PARTITION_TAG: partition}), limit=1)
        expected[partition] = expected_keys if migrated else None
    return expected


def fresh(instance: DagsterInstance, keys: Sequence[AssetKey], since: float | None = None) -> list[AssetKey]:
    """The keys with no materialization, or (`since`: when the rollout started) a newer one: the scripts the rollout
    brings, which its earlier waves applied. New scripts come last, so the keys are read from the end of the chain,
    CHUNK at a time, until one is not fresh: one query in the everyday case, whatever the number of scripts (each
    asset record read costs about 1 ms). A new script added before older ones is applied all the same."""
    found: list[AssetKey] = []
    for end in range(len(keys), 0, -CHUNK):
        chunk = list(keys[max(0, end - CHUNK) : end])
        latest = {r.asset_entry.asset_key: r.asset_entry.last_materialization for r in instance.get_asset_records(chunk)}
        newer = [k for k in chunk if latest.get(k) is None or (since is not None and latest[k].timestamp > since)]
        found = newer + found
        if len(newer) < len(chunk):
            break
    return found


def pending_request(
    run_key: str, tags: Mapping[str, str], assets: MigrationAssets | None, keys: Sequence[AssetKey] | None, partition_key: str | None = None
) -> RunRequest:
    """A run that selects `keys` with their migration checks and applies whatever is pending; the whole job when
    there are no keys or no loaded assets."""
    if not keys or assets is None:
        return RunRequest(run_key=run_key, partition_key=partition_key, tags=dict(tags))
    return RunRequest(run_key=run_key, partition_key=partition_key, tags={**tags, TAG_SELECTION: SELECT_PENDING},
                      asset_selection=list(keys), asset_check_keys=assets.checks_of(keys))
