"""README's "Review on AWS", step 1, run as written: the statements create a user that reads the history table,
creates and drops its scratch databases, and writes nothing in the warehouse.

The database is the test PostgreSQL (Redshift's CREATE USER … PASSWORD 'md5…' CREATEDB has PostgreSQL's syntax
and its MD5 formula; the test server trusts local connections, so the stored hash is compared with the one
PostgreSQL computes itself). PostgreSQL 15 and later, unlike Redshift, give PUBLIC no CREATE on schema public,
which the README tells Redshift users to revoke. The bash lines are the README's, with the Secrets Manager call replaced by the
secret's JSON as that call prints it.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRET = {"username": "dbops_review", "password": "Gen3rated4ndLong0nlyLettersAndDigits42xy"}


def step_one() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Review on AWS", 1)[1].split("\n## ", 1)[0]
    step = section.split("**1. The review database user.**", 1)[1].split("**2.", 1)[0]
    bash = re.search(r"```bash\n(.*?)```", step, re.S).group(1)
    sql = re.search(r"```sql\n(.*?)```", step, re.S).group(1)
    return bash, sql


def printed_statement(secret: dict[str, str]) -> str:
    bash, _ = step_one()
    lines = bash.replace("\\\n", " ").splitlines()
    assert lines[0].startswith('secret="$(aws secretsmanager get-secret-value --secret-id "$(out dbops-pipeline ReviewDatabaseSecretArn)"')
    script = f"secret={json.dumps(json.dumps(secret))}\n" + "\n".join(lines[1:])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def warehouse(pg_server):
    database = pg_server.create_database()
    user = f"dbops_review_{database}"  # roles are per server; tests run in parallel
    with psycopg.connect(pg_server.url(database), autocommit=True) as admin:
        admin.execute("create table customers (id int)")
        admin.execute("insert into customers values (1)")
        admin.execute("create table flyway_schema_history (installed_rank int primary key, version varchar(50), script varchar(1000))")
        admin.execute("insert into flyway_schema_history values (1, '1', 'V1__customers.sql')")
    yield pg_server, database, user
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        for (name,) in admin.execute("select datname from pg_database where datname like %s", (f"{user}%",)).fetchall():
            admin.execute(f'drop database "{name}" with (force)')
        admin.execute(f'drop database if exists "{database}" with (force)')
        admin.execute(f'drop role if exists "{user}"')


def test_the_printed_statement_is_the_readme_one_with_the_hash_postgresql_computes(warehouse) -> None:
    server, _, user = warehouse
    statement = printed_statement(SECRET)
    _, sql = step_one()
    assert re.fullmatch(r"CREATE USER dbops_review PASSWORD 'md5[0-9a-f]{32}' CREATEDB;", statement), statement
    assert re.sub(r"md5[0-9a-f]{32}", "md5<hash>", statement) == sql.strip().splitlines()[0]
    assert SECRET["password"] not in statement
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute("set password_encryption = 'md5'")
        admin.execute(f"""create user "{user}" password '{SECRET["password"]}' createdb""")
        (stored,), = admin.execute("select rolpassword from pg_authid where rolname = %s", (user,)).fetchall()
    assert stored.startswith("md5")
    assert printed_statement({**SECRET, "username": user}) == f"CREATE USER {user} PASSWORD '{stored}' CREATEDB;"


def test_the_review_user_reads_the_history_creates_and_drops_scratch_databases_and_writes_nothing(warehouse) -> None:
    server, database, user = warehouse
    _, sql = step_one()
    statements = [line for line in sql.strip().splitlines() if line.strip()]
    assert statements[0].startswith("CREATE USER dbops_review") and len(statements) == 3
    with psycopg.connect(server.url(database), autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement.replace("dbops_review", f'"{user}"').replace("md5<hash>", "md5" + "0" * 32))

    def connect(db: str) -> psycopg.Connection:
        return psycopg.connect(server.url(db).replace("postgres@", f"{user}@", 1), autocommit=True)

    scratch = f"{user}_scratch"
    with connect("postgres") as review:
        review.execute(f'create database "{scratch}"')
    with connect(scratch) as review:
        review.execute("create schema analytics")
        review.execute("create table analytics.orders (id int)")
    with connect("postgres") as review:
        review.execute(f'drop database "{scratch}"')
    with connect(database) as review:
        assert review.execute("select script from public.flyway_schema_history").fetchall() == [("V1__customers.sql",)]
        for statement in ("create table public.orders (id int)", "insert into customers values (2)", "delete from customers",
                          "drop table customers", "create schema analytics", "select * from customers",
                          "insert into flyway_schema_history values (2, '2', 'V2__x.sql')", "delete from flyway_schema_history",
                          f'drop database "{database}"'):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                review.execute(statement)
