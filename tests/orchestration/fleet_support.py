"""A fleet of environments for the rollout tests: one database per environment on the test server, a flyway.toml."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.pg import PgServer

LIMITED_ROLE = "fleet_limited"
FLEET_SCRIPTS = {
    "V1__customers.sql": "create schema shop;\ncreate table shop.customers (id int, name varchar(50));",
    "V2__orders.sql": "create table shop.orders (id int, customer_id int);",
    "V3__orders_view.sql": "create view shop.v_orders as select o.id, c.name from shop.orders o join shop.customers c on c.id = o.customer_id;",
}


@dataclass
class FleetEnvironment:
    name: str
    wave: int
    database: str
    url: str
    password_variable: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def make_fleet(server: PgServer, waves: list[int], prefix: str = "tenant") -> list[FleetEnvironment]:
    """One fresh database per entry of `waves` (that environment's wave), named prefix-00, prefix-01, …"""
    fleet = []
    for number, wave in enumerate(waves):
        database = server.create_database("fleet")
        fleet.append(FleetEnvironment(f"{prefix}-{number:02d}", wave, database, server.url(database)))
    return fleet


def write_flyway_toml(path: Path, fleet: list[FleetEnvironment], urls: dict[str, str] | None = None) -> None:
    """[environments.<name>] with the URL (or `urls[name]`), [dbops.environments.<name>] with the wave."""
    urls = urls or {}
    parts = []
    for env in fleet:
        parts.append(f'[environments.{env.name}]\nurl = "{urls.get(env.name, env.url)}"\n')
        extra = "".join(f'{k} = "{v}"\n' for k, v in env.extra.items())
        if env.password_variable:
            extra += f'password_variable = "{env.password_variable}"\n'
        parts.append(f"[dbops.environments.{env.name}]\nwave = {env.wave}\n{extra}")
    path.write_text("\n".join(parts))


def limited_url(server: PgServer, env: FleetEnvironment) -> str:
    """The environment's URL as a role that may connect but whose CREATE on schema public is revoked."""
    with server.admin() as admin:
        if not admin.execute("select 1 from pg_roles where rolname = %s", (LIMITED_ROLE,)).fetchone():
            admin.execute(f"create role {LIMITED_ROLE} login")
    with psycopg.connect(env.url, autocommit=True) as conn:
        conn.execute(f"grant create on database \"{env.database}\" to {LIMITED_ROLE}")
        conn.execute(f"grant usage, create on schema public to {LIMITED_ROLE}")
        conn.execute(f"revoke create on database \"{env.database}\" from {LIMITED_ROLE}")
        conn.execute(f"revoke create on schema public from {LIMITED_ROLE}")
    return env.url.replace("postgres@", f"{LIMITED_ROLE}@")


def grant_back(env: FleetEnvironment) -> None:
    with psycopg.connect(env.url, autocommit=True) as conn:
        conn.execute(f"grant create on database \"{env.database}\" to {LIMITED_ROLE}")
        conn.execute(f"grant usage, create on schema public to {LIMITED_ROLE}")


def applied_versions(url: str) -> list[str]:
    """The versions the history table has as applied successfully; [] when there is no history table."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from information_schema.tables where table_name = 'flyway_schema_history'").fetchone():
            return []
        return [v for (v,) in conn.execute("select version from flyway_schema_history where success order by installed_rank")]
