"""The lint cache: the same findings as a fresh lint, and a script linted again whenever anything it depends on changed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbops.cli import main
from dbops.lint import cache as lint_cache
from dbops.lint.cache import LintCache
from dbops.lint.checks import lint_files
from dbops.scripts.sources import FolderSource, ScriptFile

DATA = Path(__file__).parent / "data" / "lint"


def files_of(texts: dict[str, str]) -> list[ScriptFile]:
    return [ScriptFile(name, text.encode(), "sql") for name, text in texts.items()]


def lint(files: list[ScriptFile], cache: LintCache | None) -> list[tuple[str, str, int, str]]:
    return [(f.path, f.code, f.line, f.message) for f in lint_files(files, cache=cache)[1]]


@pytest.mark.parametrize("folder", ["bad", "redshift_valid", "typos"])
def test_cached_findings_equal_fresh_ones(tmp_path: Path, folder: str) -> None:
    files = FolderSource([str(DATA / folder)]).snapshot().files
    fresh = lint(files, None)
    first = LintCache.load(tmp_path / "cache.json")
    assert lint(files, first) == fresh and first.hits == 0
    second = LintCache.load(tmp_path / "cache.json")
    assert lint(files, second) == fresh
    assert second.misses == 0 and second.hits == len(lint_files(files)[0].migrations) + len(lint_files(files)[0].callbacks)


def test_an_edited_script_is_linted_again(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    before = {"V1__a.sql": "create table a (id int) diststyle all sortkey (id);\n", "V2__b.sql": "truncate a;\n"}
    assert [code for _, code, _, _ in lint(files_of(before), LintCache.load(path))] == ["DB004"]
    after = {**before, "V2__b.sql": "-- dbops:lint-ignore DB004 a staging table, reloaded nightly\ntruncate a;\n"}
    cache = LintCache.load(path)
    assert lint(files_of(after), cache) == []
    assert (cache.hits, cache.misses) == (1, 1)
    unsilenced = {**before, "V2__b.sql": "-- dbops:lint-ignore DB004\ntruncate a;\n"}
    assert [code for _, code, _, _ in lint(files_of(unsilenced), LintCache.load(path))] == ["DB013", "DB004"]


def test_a_type_change_is_judged_again_when_an_earlier_script_changes_the_column(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    change = "alter table a alter column c type varchar(20);\n"
    as_int = {"V1__a.sql": "create table a (c int) diststyle all sortkey (c);\n", "V2__b.sql": change}
    assert [code for _, code, _, _ in lint(files_of(as_int), LintCache.load(path))] == ["DB005"]
    as_varchar = {**as_int, "V1__a.sql": "create table a (c varchar(10)) diststyle all sortkey (c);\n"}
    cache = LintCache.load(path)
    assert lint(files_of(as_varchar), cache) == lint(files_of(as_varchar), None) == []
    assert cache.misses == 2


def test_a_new_script_is_judged_by_column_types_from_cached_ones(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first = {"V1__a.sql": "create table a (c varchar(40), n int) diststyle all sortkey (c);\n"}
    lint(files_of(first), LintCache.load(path))
    second = {**first, "V2__b.sql": "alter table a alter column c type varchar(10);\nalter table a alter column n type varchar(9);\n"}
    cache = LintCache.load(path)
    cached = lint(files_of(second), cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert cached == lint(files_of(second), None)
    assert [(code, line) for _, code, line, _ in cached] == [("DB005", 1), ("DB005", 2)]
    assert "VARCHAR(40) → VARCHAR(10)" in cached[0][3] and "is INTEGER" in cached[1][3]


def test_a_change_to_the_rules_empties_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "lint"
    shutil.copytree(Path(lint_cache.__file__).parent, rules, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(lint_cache, "_SOURCES", (rules,))
    lint_cache.rules_digest.cache_clear()
    try:
        files = files_of({"V1__a.sql": "truncate a;\n"})
        lint(files, LintCache.load(tmp_path / "cache.json"))
        assert LintCache.load(tmp_path / "cache.json").entries
        with open(rules / "rules.py", "a") as source:
            source.write("\n# a rule changed\n")
        lint_cache.rules_digest.cache_clear()
        cache = LintCache.load(tmp_path / "cache.json")
        assert cache.entries == {}
        assert lint(files, cache) == lint(files, None) and cache.misses == 1
    finally:
        lint_cache.rules_digest.cache_clear()


def test_a_broken_cache_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    files = files_of({"V1__a.sql": "truncate a;\n"})
    assert lint(files, LintCache.load(path)) == lint(files, None)
    assert LintCache.load(path).entries  # rewritten


def test_dbops_lint_keeps_its_cache_under_dbops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    folder = DATA / "bad"
    assert main(["--locations", str(folder), "lint"]) == 1
    first = capsys.readouterr().out
    assert (tmp_path / "home" / "lint-cache.json").exists()
    assert main(["--locations", str(folder), "lint"]) == 1
    assert capsys.readouterr().out == first
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "other"))
    monkeypatch.setenv("DBOPS_LINT_CACHE", "off")
    assert main(["--locations", str(folder), "lint"]) == 1
    assert capsys.readouterr().out == first
    assert not (tmp_path / "other").exists()
