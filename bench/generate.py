"""Generate N realistic migrations: tables, inserts, column type changes, views."""
from __future__ import annotations

from pathlib import Path


def migration_sql(i: int) -> str:
    """The SQL of migration number i (1-based); four kinds in rotation."""
    table = f"t{(i - 1) // 4 * 4 + 1:05d}"
    kind = (i - 1) % 4
    if kind == 0:
        return (
            f"-- table {table}\n"
            f"create table {table} (id int primary key, name varchar(50), amount numeric(12,2), created_at timestamp);\n"
        )
    if kind == 1:
        values = ",\n".join(f"  ({n}, 'row {n}', {n}.50, '2024-01-01')" for n in range(1, 11))
        return f"insert into {table} (id, name, amount, created_at) values\n{values};\n"
    if kind == 2:
        return f"alter table {table} alter column name type varchar(200);\n"
    return f"create view {table}_v as select id, name, amount from {table} where amount > 1;\n"


def generate(folder: Path, n: int) -> list[Path]:
    """Write V1..Vn into `folder` (created); return the paths in version order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = folder / f"V{i}__step_{i}.sql"
        path.write_text(migration_sql(i))
        paths.append(path)
    return paths
