"""A review as a pull-request comment (Markdown), a JSON document, or tables on a terminal."""
from __future__ import annotations

from typing import Any

from dbops.lint.checks import counts
from dbops.output import Console
from dbops.review.review import Review

COMMENT_LIMIT = 10_000  # CodeCommit takes comments of up to 10,240 characters
_ROW_LIMITS = (50, 20, 10, 5, 0)


def lint_counts(review: Review) -> dict[str, int]:
    return counts(review.lint)


def verdict(review: Review) -> str:
    count = len(review.blocking)
    return "may merge" if review.may_merge else f"blocked ({count} blocking finding{'s' if count != 1 else ''})"


def as_json(review: Review) -> dict[str, Any]:
    """The whole review: `may_merge`, `markdown` (the PR comment) and the structured findings."""
    return {
        "may_merge": review.may_merge,
        "markdown": markdown(review),
        "blocking": review.blocking,
        "scripts": review.scripts,
        "base": {"ref": review.base.ref, "commit": review.base.commit, "fork": review.base.fork} if review.base else None,
        "target": review.target,
        "integrity": [f.as_dict() for f in review.integrity],
        "lint": [f.as_dict() for f in review.lint],
        "plan": {"against": review.plan_against, "scripts": [p.as_dict() for p in review.plan]},
        "scratch": review.scratch.as_dict() if review.scratch else None,
        "seconds": review.seconds,
    }


def markdown(review: Review, limit: int = COMMENT_LIMIT) -> str:
    """The PR comment; long tables are cut (most important rows first) to keep it under `limit` characters."""
    for rows in _ROW_LIMITS:
        text = _markdown(review, rows)
        if len(text) <= limit:
            return text
    return text[: limit - 40].rstrip() + "\n\n… (cut; see `dbops review` for the rest)\n"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[object]], limit: int) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n… and {len(rows) - limit} more")
    return lines


def _markdown(review: Review, rows: int) -> str:
    icon = "✅" if review.may_merge else "❌"
    lines = [f"## {icon} dbops review: {verdict(review)}", ""]
    against = [f"base `{review.base.ref}` ({review.base.commit[:12]})" if review.base else "",
               f"target `{review.target}`" if review.target else ""]
    lines.append(f"{review.scripts} script(s); checked against {' and '.join(a for a in against if a) or 'nothing (no --base, no target)'}.")
    lines += ["", "### Integrity", ""]
    if review.integrity:
        lines += _table(["", "Kind", "Files", "Problem", "What to do"],
                        [["❌" if f.blocks else "⚠️", f.kind, ", ".join(f"`{p}`" for p in f.files), f.message, f.fix]
                         for f in review.integrity], max(rows, 5))
    else:
        lines.append("No problems." if review.base or review.target else "Not checked: give `--base REF` or a target.")
    lines += ["", "### Lint", ""]
    counts = lint_counts(review)
    lines.append(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info.")
    shown = [f for f in review.lint if f.severity != "info"]
    if shown:
        lines.append("")
        lines += _table(["Where", "Rule", "Problem", "Fix"],
                        [[f"`{f.path}:{f.line}`", f"{f.code} {f.severity}", f.message, f.fix] for f in shown], rows)
    lines += ["", "### Plan", "", f"{len(review.plan)} script(s) would run on {review.plan_against}."]
    risky = [p for p in review.plan if p.destructive or p.non_transactional]
    if review.plan:
        lines.append("")
        ordered = risky + [p for p in review.plan if p not in risky]
        lines += _table(["Script", "Mode", "Non-transactional", "Destructive"],
                        [[f"`{p.path}`", p.mode, "; ".join(f"line {n}: {s}" for n, s in p.non_transactional),
                          "; ".join(f"line {n}: {s}" for n, s in p.destructive)] for p in ordered], rows)
    lines += ["", "### Scratch build", ""]
    s = review.scratch
    if s is None:
        lines.append("Skipped (--no-scratch).")
    else:
        outcome = "built" if s.ok else "**failed**"
        lines.append(f"{outcome}: {len(s.built)} migration(s) from empty on {s.server} (database `{s.database}`, dropped) "
                     f"in {s.seconds:.2f}s.")
        if s.failure:
            lines += ["", "```", s.failure.strip()[:2000], "```"]
        if s.built:
            slowest = sorted(s.built, key=lambda b: -b.milliseconds)
            lines += ["", "Slowest first:" if len(s.built) > rows else ""]
            lines += _table(["Script", "Time (ms)", "Statements", "Mode"],
                            [[f"`{b.path}`", b.milliseconds, b.statements, b.mode] for b in slowest], rows)
    if review.blocking:
        lines += ["", "### Why it is blocked", ""] + [f"- {_cell(reason)}" for reason in review.blocking[: max(rows, 5)]]
        if len(review.blocking) > max(rows, 5):
            lines.append(f"- … and {len(review.blocking) - max(rows, 5)} more")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def show(console: Console, review: Review) -> None:
    """Plain lines in a pipe, rich tables on a terminal."""
    if review.base:
        console.result(f"Base: {review.base.label}, forked at {review.base.fork[:12]}")
    if review.target:
        console.result(f"Target: {review.target}")
    if review.integrity:
        console.table("Integrity", ["Severity", "Kind", "Files", "Problem", "What to do"],
                      [[f.severity, f.kind, ", ".join(f.files), f.message, f.fix] for f in review.integrity])
    else:
        console.result("Integrity: no problems." if review.base or review.target else
                       "Integrity: not checked (no --base, no target).")
    for finding in review.lint:
        if finding.severity != "info":
            console.result(f"lint: {finding}")
    counts = lint_counts(review)
    console.result(f"Lint: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info.")
    title = f"Plan: {len(review.plan)} script(s) would run on {review.plan_against}"
    if review.plan:
        console.table(title, ["Script", "Mode", "Non-transactional", "Destructive"],
                      [[p.path, p.mode, "; ".join(f"line {n}: {s}" for n, s in p.non_transactional),
                        "; ".join(f"line {n}: {s}" for n, s in p.destructive)] for p in review.plan])
    else:
        console.result(f"{title}.")
    s = review.scratch
    if s is None:
        console.result("Scratch build: skipped (--no-scratch).")
    elif s.built:
        console.table(f"Scratch build on {s.server} (database {s.database}, dropped)",
                      ["Script", "Time (ms)", "Statements", "Mode"],
                      [[b.path, b.milliseconds, b.statements, b.mode] for b in s.built])
    if s is not None:
        console.result(f"Scratch build: {'built' if s.ok else 'FAILED'}, {len(s.built)} migration(s) in {s.seconds:.2f}s.")
        if s.failure:
            console.result(s.failure)
    for reason in review.blocking:
        console.result(f"blocks: {reason}")
    console.result(f"Review: {verdict(review)}.")
