"""Settings from flags, DBOPS_* variables and a Flyway config file, in that order."""
from __future__ import annotations

import json

import pytest

from dbops.cli import main
from dbops.config import conf_placeholders, conf_schema, read_flyway_conf
from dbops.errors import ConfigError


def test_flyway_conf_keys(tmp_path) -> None:
    conf = tmp_path / "flyway.conf"
    conf.write_text("# comment\nflyway.url=jdbc:redshift://h:5439/db\nflyway.placeholders.Days=30\nflyway.schemas=dw,staging\nflyway.table=history\n")
    values = read_flyway_conf(str(conf))
    assert conf_placeholders(values) == {"days": "30"}
    assert conf_schema(values) == "dw" and values["table"] == "history"


def test_bad_conf_line_names_file_and_line(tmp_path) -> None:
    conf = tmp_path / "flyway.conf"
    conf.write_text("flyway.table=history\nnonsense\n")
    with pytest.raises(ConfigError, match=r"flyway.conf:2"):
        read_flyway_conf(str(conf))


def test_cli_reads_flyway_conf_and_flags_win(pg_url, tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "V1__a.sql").write_text("create table ${name} (id int);")
    (tmp_path / "flyway.conf").write_text("flyway.locations=filesystem:db\nflyway.placeholders.name=from_conf\nflyway.table=my_history\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DBOPS_LOCATIONS", raising=False)
    monkeypatch.setenv("DBOPS_URL", pg_url)
    assert main(["migrate", "--direct", "--dry-run"]) == 0
    assert "create table from_conf" in capsys.readouterr().out
    monkeypatch.setenv("DBOPS_PLACEHOLDER_NAME", "from_env")
    assert main(["migrate", "--direct", "--dry-run"]) == 0
    assert "create table from_env" in capsys.readouterr().out
    assert main(["--placeholder", "name=from_flag", "migrate", "--direct", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["applied"][0]["script"] == "V1__a.sql"
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["migrations"][0]["state"] == "Success"


def write_conf(tmp_path, text: str):
    conf = tmp_path / "flyway.conf"
    conf.write_text(text, encoding="utf-8", newline="")
    return conf


def test_flyway_conf_follows_java_properties_lines(tmp_path) -> None:
    conf = write_conf(tmp_path, (
        "\ufeff# comment: a BOM before it is ignored\r\n"
        "flyway.locations=filesystem:db/a,\\\n    filesystem:db/b,\\\n\tfilesystem:db/c\n"
        "flyway.table: history\n"
        "flyway.defaultSchema   analytics\n"
        "! another comment\n"
        "flyway.placeholders.path = C:\\sql\\dir\n"
        "flyway.placeholders.eq=a=b\n"
        "flyway.placeholders.even=x\\\\\n"
        "flyway.mixed=TRUE\n"
    ))
    values = read_flyway_conf(str(conf))
    assert values["locations"] == "filesystem:db/a,filesystem:db/b,filesystem:db/c"
    assert (values["table"], values["defaultSchema"], values["mixed"]) == ("history", "analytics", "TRUE")
    assert conf_placeholders(values) == {"path": "C:\\sql\\dir", "eq": "a=b", "even": "x\\\\"}


def test_a_continued_line_holding_an_equals_sign_is_part_of_the_value(tmp_path) -> None:
    conf = write_conf(tmp_path, "flyway.placeholders.q=select 1 \\\n  where a=b\nflyway.table=t\n")
    values = read_flyway_conf(str(conf))
    assert values["placeholders.q"] == "select 1 where a=b" and values["table"] == "t"


@pytest.mark.parametrize(("text", "expected"), [
    ("flyway.table=history\nnonsense\n", "flyway.conf:2: expected key=value"),
    ("# c\nflyway.locations=a,\\\n  b\nflyway.outOfOrder=maybe\n", "flyway.conf:4: flyway.outOfOrder: 'maybe' is not true or false"),
    ("flyway.mixed=\n", "flyway.conf:1: flyway.mixed: '' is not true or false"),
])
def test_bad_conf_lines_exit_2_naming_file_line_and_key(tmp_path, monkeypatch, capsys, text, expected) -> None:
    write_conf(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DBOPS_CONFIG", raising=False)
    monkeypatch.setenv("DBOPS_URL", "postgresql://h/db")
    assert main(["--json", "info"]) == 2
    out, err = capsys.readouterr()
    assert expected in json.loads(out)["error"] and "Traceback" not in err


def test_the_cli_reads_continued_locations_and_a_colon_separator(pg_url, tmp_path, monkeypatch, capsys) -> None:
    for folder, script in (("a", "V1__a.sql"), ("b", "V2__b.sql")):
        (tmp_path / "db" / folder).mkdir(parents=True)
        (tmp_path / "db" / folder / script).write_text("select 1;")
    write_conf(tmp_path, "\ufeff# project\nflyway.locations=filesystem:db/a,\\\n    filesystem:db/b\nflyway.outOfOrder: True\n")
    monkeypatch.chdir(tmp_path)
    for name in ("DBOPS_CONFIG", "DBOPS_LOCATIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DBOPS_URL", pg_url)
    assert main(["info", "--json"]) == 0
    assert [m["script"] for m in json.loads(capsys.readouterr().out)["migrations"]] == ["V1__a.sql", "V2__b.sql"]
