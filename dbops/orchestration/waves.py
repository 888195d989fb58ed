"""Waves of a rollout: which environments to start next, from the state of each one's latest run.

A rollout applies one commit wave by wave: wave N+1 starts only when every environment of wave N
succeeded at that commit; within a wave the first failure stops new starts (running ones finish) and
the environments not started yet stay untouched. The same decision drives the rollout sensor (from
the daemon) and `dbops rollout` (from a terminal or CodeBuild), so both resume the same way.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SUCCEEDED = "succeeded"
FAILED = "failed"
ACTIVE = "active"  # queued, starting or running
UNTOUCHED = "untouched"


@dataclass(frozen=True)
class EnvironmentRun:
    """The latest run of one environment in a rollout: its state, run id and (failed) error."""

    environment: str
    state: str
    run_id: str = ""
    error: str = ""


@dataclass
class WaveStep:
    """What to do now: start `start` in wave `wave`; `stopped` when a failure holds the wave; `done` when every
    wave succeeded."""

    wave: int | None
    start: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    failed: list[EnvironmentRun] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def stopped(self) -> bool:
        return bool(self.failed)


def next_step(
    waves: Mapping[str, int], runs: Mapping[str, EnvironmentRun], capacity: int, retry_failed: bool = False
) -> WaveStep:
    """The step of a rollout over `waves` (environment → wave) given each environment's latest run.

    `capacity`: how many environments may run at once (active ones count); `retry_failed`: a rerun, which
    starts the failed environments of the current wave again instead of stopping at them.
    """
    by_wave: dict[int, list[str]] = {}
    for name, wave in waves.items():
        by_wave.setdefault(wave, []).append(name)
    for wave in sorted(by_wave):
        names = sorted(by_wave[wave])
        state = {n: runs.get(n, EnvironmentRun(n, UNTOUCHED)) for n in names}
        if retry_failed:
            state = {n: EnvironmentRun(n, UNTOUCHED) if r.state == FAILED else r for n, r in state.items()}
        succeeded = [n for n in names if state[n].state == SUCCEEDED]
        if len(succeeded) == len(names):
            continue
        step = WaveStep(
            wave=wave,
            active=[n for n in names if state[n].state == ACTIVE],
            failed=[state[n] for n in names if state[n].state == FAILED],
            untouched=[n for n in names if state[n].state == UNTOUCHED],
            succeeded=succeeded,
        )
        if not step.failed:
            step.start = step.untouched[: max(0, capacity - len(step.active))]
        return step
    return WaveStep(wave=None, done=True, succeeded=sorted(waves))


def rollout_id(commit: str | None, scripts: Iterable[tuple[str, int | None]]) -> str:
    """A rollout's id: the commit it applies, else a digest of the scripts (path, checksum), so that running the
    same rollout again resumes it."""
    if commit:
        return commit
    digest = hashlib.sha1("\n".join(f"{path}:{checksum}" for path, checksum in sorted(scripts)).encode()).hexdigest()
    return f"scripts-{digest[:16]}"
