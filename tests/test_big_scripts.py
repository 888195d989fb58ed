"""Big scripts: a multi-MB script and one of many statements apply whole, on both drivers; a failure deep in
one is located by file:line and leaves nothing applied. (On psycopg a script over 1 MB travels in pieces.)"""
from __future__ import annotations

import zlib

import pytest

from dbops.errors import MigrationFailed
from dbops.lint.checks import lint_files
from dbops.scripts.migrations import checksum
from dbops.scripts.sources import ScriptFile
from dbops.scripts.statements import pieces
from tests.test_engine import engine_for, history, rows, table_exists

ROW = "insert into big (id, note) values ({n}, 'row {n}; not a statement end -- nor a comment');\n"


def big_script(count: int, broken_at: int | None = None) -> str:
    lines = ["create table big (id int primary key, note varchar(80));\n"]
    for n in range(1, count + 1):
        lines.append("insert into nowhere values (1);\n" if n == broken_at else ROW.format(n=n))
    return "".join(lines)


def test_a_script_of_many_statements_over_several_megabytes_applies_whole(any_db, scripts) -> None:
    sql = big_script(13_000)
    assert len(sql) > (1 << 20)
    folder = scripts({"V1__big.sql": sql, "V2__after.sql": "create table after_big (id int);"})
    results = list(engine_for(any_db, folder).migrate())
    assert [r.script for r in results] == ["V1__big.sql", "V2__after.sql"]
    assert results[0].statements == 13_001 and results[0].rows_affected == 13_000
    assert rows(any_db, "select count(*), count(distinct note) from big") == [(13_000, 13_000)]
    assert [(r[4], r[5]) for r in history(any_db)] == [("V1__big.sql", checksum(sql)), ("V2__after.sql", checksum("create table after_big (id int);"))]


def test_a_failure_deep_in_a_big_script_names_file_and_line_and_applies_nothing(any_db, scripts) -> None:
    folder = scripts({"V1__big.sql": big_script(13_000, broken_at=11_000)})
    with pytest.raises(MigrationFailed) as error:
        list(engine_for(any_db, folder).migrate())
    message = str(error.value)
    assert "V1__big.sql:11001" in message and "insert into nowhere" in message and 'relation "nowhere" does not exist' in message
    assert not table_exists(any_db, "big") and history(any_db) == []


def test_a_failure_without_a_position_in_a_big_script_is_found_by_replaying_its_piece(any_db, scripts) -> None:
    """A duplicate key has no position in the text: the failing statement is found by replay, still by line."""
    sql = big_script(13_000).replace("values (12000,", "values (11999,")
    folder = scripts({"V1__big.sql": sql})
    with pytest.raises(MigrationFailed) as error:
        list(engine_for(any_db, folder).migrate())
    assert "V1__big.sql:12001" in str(error.value) and "duplicate key" in str(error.value)
    assert not table_exists(any_db, "big")


def test_pieces_end_at_statement_ends_and_put_the_script_back_together() -> None:
    sql = big_script(13_000) + "create function f() returns int as $$ select 1; $$ language sql;\n/* the end; */\n"
    cut = list(pieces(sql, 1 << 17))
    assert len(cut) > 5 and "".join(text for _, text in cut) == sql
    assert all(text.endswith(";\n") or text.endswith(";") for _, text in cut[:-1])
    assert all(sql.startswith(text, start) for start, text in cut)


def test_no_cut_after_begin_or_in_a_script_with_backslashes() -> None:
    body = big_script(20_000)
    atomic = body + "create procedure p() begin atomic insert into big values (0, 'x'); end;\n" + body
    assert [start for start, _ in pieces(atomic, 1 << 18)][-1] < len(body)
    assert len(list(pieces(body.replace("row 7;", "row\\' 7;"), 1 << 18))) == 1


def test_the_checksum_of_a_big_script_is_the_same_read_in_slices() -> None:
    """Slices of 1 MB: line breaks (\\r\\n split across a slice edge) and a BOM give Flyway's value."""
    text = "\ufeff" + ("x" * ((1 << 20) - 2) + "\r\n" + "é;\r\n") * 3
    crc = zlib.crc32(text[1:].replace("\r", "").replace("\n", "").encode("utf-8"))
    assert checksum(text) == (crc - (1 << 32) if crc >= (1 << 31) else crc)


def test_lint_of_many_inserts_reports_each_broken_one_at_its_own_line() -> None:
    """INSERTs of one shape share a parse; each broken one is still reported at its line, and others are checked."""
    lines = ["create table t (id int, note varchar(20)) diststyle all sortkey (id);"]
    for n in range(2, 2001):
        lines.append(f"insert into t valuez ({n}, 'row {n}');" if n in (10, 500, 1500) else f"insert into t values ({n}, 'row {n}');")
    lines.append("delete from t;")
    _, findings = lint_files([ScriptFile("V1__many.sql", "\n".join(lines).encode(), "sql")])
    assert [(f.code, f.line) for f in findings if f.code == "DB001"] == [("DB001", 10), ("DB001", 500), ("DB001", 1500)]
    assert [(f.code, f.line) for f in findings if f.code == "DB004"] == [("DB004", 2001)]
