"""waves.next_step: what a rollout starts next, from each environment's latest run."""
from __future__ import annotations

from dbops.orchestration.waves import ACTIVE, FAILED, SUCCEEDED, EnvironmentRun, next_step, rollout_id

WAVES = {"dev": 0, "stage-a": 1, "stage-b": 1, "stage-c": 1, "prod": 2}


def runs(**states: str) -> dict[str, EnvironmentRun]:
    return {name.replace("_", "-"): EnvironmentRun(name.replace("_", "-"), state, f"run-{name}") for name, state in states.items()}


def test_waves_go_in_order_and_capacity_counts_running_ones() -> None:
    assert next_step(WAVES, {}, 4).start == ["dev"]
    step = next_step(WAVES, runs(dev=SUCCEEDED, stage_a=ACTIVE), 2)
    assert (step.wave, step.start, step.active) == (1, ["stage-b"], ["stage-a"])
    assert next_step(WAVES, runs(dev=SUCCEEDED, stage_a=SUCCEEDED, stage_b=SUCCEEDED, stage_c=SUCCEEDED), 2).start == ["prod"]
    done = next_step(WAVES, runs(dev=SUCCEEDED, stage_a=SUCCEEDED, stage_b=SUCCEEDED, stage_c=SUCCEEDED, prod=SUCCEEDED), 2)
    assert done.done and done.wave is None


def test_a_failure_stops_its_wave_and_a_rerun_starts_it_again() -> None:
    state = runs(dev=SUCCEEDED, stage_a=FAILED, stage_b=ACTIVE)
    step = next_step(WAVES, state, 4)
    assert step.stopped and step.start == [] and step.untouched == ["stage-c"] and [r.environment for r in step.failed] == ["stage-a"]
    again = next_step(WAVES, state, 4, retry_failed=True)
    assert again.start == ["stage-a", "stage-c"] and not again.stopped


def test_a_rollouts_id_is_its_commit_else_its_scripts() -> None:
    assert rollout_id("c0ffee", []) == "c0ffee"
    one, same, other = rollout_id(None, [("a.sql", 1), ("b.sql", 2)]), rollout_id(None, [("b.sql", 2), ("a.sql", 1)]), rollout_id(None, [("a.sql", 3)])
    assert one == same != other and one.startswith("scripts-")
