"""The scan that splits plain statements without sqlparse splits exactly as sqlparse does (statements, lines,
normalized text), and it is a generator: a long script is read statement by statement."""
from __future__ import annotations

from itertools import islice

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlparse.engine import FilterStack

from dbops.scripts import statements as st_mod
from dbops.scripts.statements import iter_statements, normalize, one_comment_each, split


def sqlparse_split(sql: str) -> list[tuple[str, int, str]]:
    """What dbops's splitter returned when sqlparse split every script (the reference), a nested block comment read
    as one comment, as PostgreSQL reads it."""
    found, line, offset = [], 1, 0
    for raw in FilterStack().run(one_comment_each(sql)):
        text = sql[offset : offset + len(str(raw))]
        offset += len(text)
        start = st_mod._first_code_offset(raw)
        if start is not None:
            body = text[start:].rstrip()
            if body.endswith(";"):
                body = body[:-1].rstrip()
            if body:
                found.append((body, line + text.count("\n", 0, start), st_mod._normalize_tokens(raw)))
        line += text.count("\n")
    return found


def ours(sql: str) -> list[tuple[str, int, str]]:
    return [(s.sql, s.line, s.normalized) for s in split(sql)]


FRAGMENTS = [
    "select 1", "insert into t values (1, 'a')", "create table t (i int)", ";", ";", ";", " ", "  ", "\n", "\r\n", "\r",
    "\t", "(", ")", "'", "''", "'a;b'", "'it''s'", "\"q;id\"", "\"", "-- c;\n", "-- c", "--+ hint\n", "# x\n", "/* a; */",
    "/*", "*/", "$$", "$$ select 1; $$", "$f$ x; $f$", "\\", "\\'", "[a;b]", "`a;b`", "begin", "BEGIN", "end", "END IF",
    "declare", "go", "GO", "case when 1 then 2 end", "if", "loop", "create function f() returns int as", "commit",
    "e'a\\'b'", "\u00a0", "\x0c", "\u00e9t\u00e9", "weekend", "begins", "x$y", ":p", "%s", "0x1F", "1.5e3",
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_random_scripts_split_as_sqlparse_splits_them(parts: list[str]) -> None:
    sql = " ".join(parts) if len(parts) % 2 else "".join(parts)
    assert ours(sql) == sqlparse_split(sql)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab ;'\"()-\n\r$/*\\#[]`eEgGoObB")), max_size=80))
def test_random_characters_split_as_sqlparse_splits_them(sql: str) -> None:
    assert ours(sql) == sqlparse_split(sql)


CASES = [
    "select 1; -- a\n-- b\nselect 2;  \n  select 3 -- t\n;",
    "create function f() returns int as $$ begin return 1; end; $$ language plpgsql;\nselect 1;",
    "create procedure p() begin select 1; select 2; end;\nselect 3;",
    "select (1;\nselect 2);\nselect 3;",
    "insert into t values ('a;b', \"c;d\"); /* x; */ select 1;",
    "begin;\ncreate table t (i int);\ncommit;",
    ";;\n;select 1;;",
    "0x1FGO''\t\r-- c;\n  ",
    "go# x\n--+ hint\n$f$ x; $f$;endcommitbegins\r%sGO  if",
    "select 1;\r\n-- x\r\nselect 2;\rselect 3",
    "select 1*/-- c;\nselect 1",  # sqlparse lexes `/--` as one operator: the `;` ends the statement
    "select 1 +-- c;\nselect 2 |-- d;\nselect 3 -- e;\nselect 4",
    "select 1; /* a /* b; */ c; */ select 2; /* d */ select 3;",
]


def test_handwritten_scripts_split_as_sqlparse_splits_them() -> None:
    for sql in CASES:
        assert ours(sql) == sqlparse_split(sql), sql


def test_the_normalized_text_is_the_same_when_computed_later() -> None:
    sql = "-- lead\nvacuum 'x' sales; -- trailing\nALTER table t append from s"
    for statement in split(sql):
        assert statement.normalized == normalize(statement.sql)


def test_statements_read_without_normalizing_are_the_same_statements() -> None:
    for sql in CASES:
        lazy = list(iter_statements(sql, normalize=False))
        assert [(s.sql, s.line, s.normalized) for s in lazy] == ours(sql), sql


def test_a_long_script_is_read_statement_by_statement() -> None:
    """Taking the first statements of a script of a million reads only those (a generator, not a list)."""
    sql = "insert into t values (1, 'x');\n" * 1_000_000
    first = list(islice(iter_statements(sql), 3))
    assert [(s.sql, s.line) for s in first] == [("insert into t values (1, 'x')", n) for n in (1, 2, 3)]
