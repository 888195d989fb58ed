"""Discovery: Flyway names, versions, checksums, placeholders and per-script config."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dbops.errors import ConfigError, ScriptError
from dbops.scripts.migrations import PlaceholderContext, Version, checksum, discover, parse_name
from dbops.scripts.sources import FolderSource, ScriptFile

CHECKSUMS = Path(__file__).parent / "data" / "checksums"


def _expected_checksums() -> dict[str, int]:
    rows = (line.split("\t") for line in (CHECKSUMS / "expected.tsv").read_text().splitlines())
    return {name: int(value) for name, value in rows}


def _catalog(folder: Path, **kwargs):
    return discover(FolderSource([str(folder)]).snapshot().files, **kwargs)


@pytest.mark.parametrize("name", sorted(_expected_checksums()))
def test_checksum_equals_flyways(name: str) -> None:
    data = (CHECKSUMS / name).read_bytes()
    assert checksum(data.decode("utf-8")) == _expected_checksums()[name]


@pytest.mark.parametrize("name", sorted(_expected_checksums()))
def test_discovered_scripts_carry_flyways_checksum(name: str, tmp_path: Path) -> None:
    """Through discovery as migrate reads a file: only the file's first BOM is dropped (Flyway's BomFilter)."""
    (tmp_path / "V1__data.sql").write_bytes((CHECKSUMS / name).read_bytes())
    [migration] = _catalog(tmp_path).migrations
    assert migration.checksum == _expected_checksums()[name]


def test_a_second_bom_stays_in_the_sql() -> None:
    [migration] = discover([ScriptFile("V1__two.sql", (CHECKSUMS / "bom_twice.sql").read_bytes(), "sql")]).migrations
    assert migration.sql.startswith("\ufeffcreate table two_boms")


@pytest.mark.skipif(shutil.which("java") is None, reason="no JVM to recompute Flyway's checksums")
def test_recorded_checksums_are_what_java_computes() -> None:
    out = subprocess.run(
        ["java", "FlywayChecksum.java", *sorted(_expected_checksums())],
        cwd=CHECKSUMS, capture_output=True, text=True, check=True,
    ).stdout
    computed = {name: int(value) for name, value in (line.split("\t") for line in out.splitlines())}
    assert computed == _expected_checksums()


def test_checksum_ignores_line_endings_only() -> None:
    assert checksum("a\nb") == checksum("a\r\nb") == checksum("a\rb")
    assert checksum("a\nb") != checksum("a\x0bb")


@pytest.mark.parametrize(
    ("name", "kind", "version", "description"),
    [
        ("V1__Create_users.sql", "V", "1", "Create users"),
        ("V1.1.sql", "V", "1.1", ""),
        ("V001__a.sql", "V", "001", "a"),
        ("V2_1__b.sql", "V", "2.1", "b"),
        ("V3__a__b.sql", "V", "3", "a  b"),
        ("R__views.sql", "R", None, "views"),
        ("U4__drop.sql", "U", "4", "drop"),
        ("B5__base.sql", "B", "5", "base"),
        ("V6__upper.SQL", "V", "6", "upper"),
    ],
)
def test_names(name: str, kind: str, version: str | None, description: str) -> None:
    parsed = parse_name(name[:-4] + ".sql")
    assert parsed.kind == kind
    assert (parsed.version.text if parsed.version else None) == version
    assert parsed.description == description


@pytest.mark.parametrize("name", ["v1__x.sql", "V1_x.sql", "V__x.sql", "R1__x.sql", "X1__x.sql", "Va__b.sql", "R.sql"])
def test_invalid_names(name: str) -> None:
    assert parse_name(name) is None


def test_callbacks_are_not_migrations() -> None:
    assert parse_name("afterMigrate__grants.sql") == "afterMigrate"
    assert parse_name("beforeMigrate.sql") == "beforeMigrate"


def test_version_order() -> None:
    versions = [Version.parse(v) for v in ["1.10", "1.9", "2", "1", "1.0.1", "10", "001.2"]]
    assert [v.text for v in sorted(versions)] == ["1", "1.0.1", "001.2", "1.9", "1.10", "2", "10"]
    assert Version.parse("1.0") == Version.parse("1") == Version.parse("001")
    assert Version.parse("99999999999999999999.1") > Version.parse("99999999999999999999")


def test_discovery_is_recursive_and_ordered(scripts) -> None:
    folder = scripts(
        {
            "V2__b.sql": "select 2;",
            "nested/deeper/V1.5__a.sql": "select 15;",
            "V10__c.sql": "select 10;",
            "R__b_views.sql": "select 'b';",
            "R__a_views.sql": "select 'a';",
            "README.md": "not a script",
            "V1__x.sql.conf": "executeInTransaction=false\n",
            "V1__x.sql": "vacuum;",
        }
    )
    catalog = _catalog(folder)
    assert [m.script for m in catalog.migrations] == [
        "V1__x.sql", "nested/deeper/V1.5__a.sql", "V2__b.sql", "V10__c.sql", "R__a_views.sql", "R__b_views.sql",
    ]
    assert catalog.versioned[0].in_transaction is False


def test_repeatables_sort_as_java_strings(scripts) -> None:
    folder = scripts({"R__b.sql": "", "R__B.sql": "", "R__a.sql": "", "R__\u00e9.sql": "", "R__\U0001F600.sql": "", "R__\uffff.sql": ""})
    order = [m.description for m in _catalog(folder).repeatable]
    assert order == ["B", "a", "b", "\u00e9", "\U0001F600", "\uffff"]


def test_duplicate_versions_name_both_files(scripts) -> None:
    folder = scripts({"V1__a.sql": "", "sub/V1.0__b.sql": ""})
    with pytest.raises(ConfigError) as error:
        _catalog(folder)
    assert "V1__a.sql" in str(error.value) and "sub/V1.0__b.sql" in str(error.value)


def test_duplicate_repeatables_name_both_files(scripts) -> None:
    folder = scripts({"R__views.sql": "", "other/R__views.sql": ""})
    with pytest.raises(ConfigError, match="R__views.sql.*other/R__views.sql"):
        _catalog(folder)


def test_invalid_names_are_errors_naming_each_file(scripts) -> None:
    folder = scripts({"V1__ok.sql": "", "v2__lower.sql": "", "V3_single.sql": ""})
    with pytest.raises(ConfigError) as error:
        _catalog(folder)
    assert "v2__lower.sql" in str(error.value) and "V3_single.sql" in str(error.value)
    assert "--ignore-invalid-names" in str(error.value)
    catalog = _catalog(folder, ignore_invalid_names=True)
    assert [m.script for m in catalog.migrations] == ["V1__ok.sql"]
    assert "v2__lower.sql" in catalog.warnings[0]


def test_placeholders_and_builtins(scripts) -> None:
    folder = scripts({"V1__a.sql": "create schema ${Env}_mart; -- ${flyway:filename} ${flyway:defaultSchema} ${flyway:table}"})
    context = PlaceholderContext(values={"env": "prod"}, schema="dw", table="hist")
    sql = _catalog(folder, placeholders=context).versioned[0].sql
    assert sql == "create schema prod_mart; -- V1__a.sql dw hist"


def test_undefined_placeholder_names_file_and_line(scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;\r\nselect 2;\rselect '${missing}';"})
    with pytest.raises(ScriptError) as error:
        _catalog(folder)
    assert error.value.line == 3
    assert "V1__a.sql:3" in str(error.value) and "${missing}" in str(error.value)


def test_placeholder_replacement_can_be_turned_off(scripts) -> None:
    folder = scripts({"V1__a.sql": "select '${not_a_placeholder}';", "V1__a.sql.conf": "placeholderReplacement=false"})
    assert "${not_a_placeholder}" in _catalog(folder).versioned[0].sql


def test_versioned_checksum_is_over_text_as_written_repeatable_after_placeholders(scripts) -> None:
    folder = scripts({"V1__a.sql": "select '${x}';", "R__b.sql": "select '${x}';"})
    one = _catalog(folder, placeholders=PlaceholderContext(values={"x": "1"}))
    two = _catalog(folder, placeholders=PlaceholderContext(values={"x": "2"}))
    assert one.versioned[0].checksum == two.versioned[0].checksum == checksum("select '${x}';")
    assert one.repeatable[0].checksum == checksum("select '1';")
    assert one.repeatable[0].checksum != two.repeatable[0].checksum


def test_non_utf8_file_is_an_error_naming_it(scripts) -> None:
    folder = scripts({"V1__latin.sql": "select 'caf\u00e9';".encode("latin-1")})
    with pytest.raises(ScriptError, match="V1__latin.sql.*not valid utf-8"):
        _catalog(folder)


def test_encoding_from_conf(scripts) -> None:
    folder = scripts({"V1__latin.sql": "select 'caf\u00e9';".encode("latin-1"), "V1__latin.sql.conf": "encoding=ISO-8859-1\n"})
    migration = _catalog(folder).versioned[0]
    assert migration.sql == "select 'caf\u00e9';"
    assert migration.checksum == checksum("select 'caf\u00e9';")


def test_unknown_conf_key_names_file_and_line(scripts) -> None:
    folder = scripts({"V1__a.sql": "", "V1__a.sql.conf": "# settings\nexecuteInTransaction=false\ncolour=blue\n"})
    with pytest.raises(ScriptError, match=r"V1__a.sql.conf:3"):
        _catalog(folder)


def test_non_transactional_detection_picks_autocommit(scripts) -> None:
    folder = scripts({"V1__vacuum.sql": "-- tidy up\nVACUUM sales;", "V2__mixed.sql": "create table t (id int);\nvacuum t;"})
    first, second = _catalog(folder).versioned
    assert first.in_transaction is False and not first.is_mixed
    assert second.is_mixed and second.non_transactional[0].line == 2


def test_missing_location_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        FolderSource([str(tmp_path / "nope")]).snapshot()


def test_every_non_transactional_pattern_has_a_prefilter_word() -> None:
    """Scripts skip parsing when none of the prefilter words occurs; a new pattern needs its word there."""
    from dbops.scripts.statements import _NON_TRANSACTIONAL, _NON_TX_WORDS, may_hold_non_transactional

    for pattern, label, dialects in _NON_TRANSACTIONAL:
        assert any(word in pattern for word in _NON_TX_WORDS), f"add a word of {label!r} to _NON_TX_WORDS"
        for dialect in dialects:
            assert may_hold_non_transactional(label, dialect), (label, dialect)
    assert not may_hold_non_transactional("alter table t alter column c type bigint", "postgresql")
    assert may_hold_non_transactional("alter table t alter column c type bigint", "redshift")
