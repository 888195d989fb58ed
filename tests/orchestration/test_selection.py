"""What a sensor's run selects (dbops.orchestration.selection), read from a real instance's records."""
from __future__ import annotations

import time

from dagster import AssetKey, AssetMaterialization, instance_for_test

from dbops.orchestration.selection import CHUNK, fresh


def test_fresh_scripts_are_the_unmaterialized_tail_and_those_materialized_since_the_rollout_began() -> None:
    keys = [AssetKey(["migrations", f"v{i:03d}"]) for i in range(2 * CHUNK + 20)]
    applied = CHUNK - 10  # the last chunk is all new: the boundary sits inside the second chunk read from the end
    with instance_for_test() as instance:
        for key in keys[:applied]:
            instance.report_runless_asset_event(AssetMaterialization(key))
        assert fresh(instance, keys) == keys[applied:]
        started = time.time()
        for key in keys[applied:]:  # the rollout's first wave applies the new ones
            instance.report_runless_asset_event(AssetMaterialization(key))
        assert fresh(instance, keys) == []
        assert fresh(instance, keys, since=started) == keys[applied:]
