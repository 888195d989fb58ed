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
