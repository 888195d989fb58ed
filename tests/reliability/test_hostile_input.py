"""Hostile script folders: random names, bytes, placeholders, line endings, huge and odd files.

The contract: never a traceback; either the plan a reading of Flyway's rules predicts, or exit 2 naming the file.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbops.cli import main
from dbops.engine.history import AppliedMigration
from dbops.engine.plan import build_plan
from dbops.scripts.migrations import PlaceholderContext, checksum, discover
from dbops.scripts.sources import ScriptFile
from tests.reliability.conftest import SCALE

CHECKSUMS = Path(__file__).resolve().parents[1] / "data" / "checksums"
TRIED: Counter = Counter()  # examples each property test ran, for the figures
HYPOTHESIS = settings(
    max_examples=SCALE.examples,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- an independent reading of Flyway's rules -------------------------------------------------------------

def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum from its documented rules: UTF-8 lines split on \\r\\n, \\r or \\n (nothing else), a BOM
    dropped from the first line, CRC32 fed each line's bytes, read as a signed 32-bit int."""
    crc = 0
    for number, line in enumerate(re.split(r"\r\n|\r|\n", data.decode("utf-8"))):
        if number == 0 and line.startswith("\ufeff"):
            line = line[1:]
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def version_key(raw: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.split(r"[._]", raw)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class Expected:
    """What a file name should turn into: a versioned or repeatable script, or a name Flyway cannot use."""

    name: str
    kind: str  # "V", "R" or "invalid"
    version: str | None = None
    description: str = ""

    @property
    def key(self) -> tuple:
        return ("V", version_key(self.version)) if self.kind == "V" else ("R", self.description)


# --- running dbops in-process --------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def dbops(*args: str) -> Outcome:
    """`dbops ARGS` in this process; any exception other than SystemExit escapes and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def url(pg_server) -> str:
    """One empty database: every hostile folder is planned against it (nothing is applied)."""
    return pg_server.url(pg_server.create_database("hostile"))


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No flyway.conf, DBOPS_* variable or placeholder from the machine leaks into these runs."""
    for name in list(os.environ):
        if name.startswith("DBOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def fresh_folder(base: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="sql-", dir=base))


def assert_user_error(outcome: Outcome, *named: str) -> None:
    """Exit 2, one `error:` message on stderr that names what it must."""
    assert outcome.code == 2, (outcome.code, outcome.err)
    assert outcome.err.startswith("error: ") and "Traceback" not in outcome.err
    for name in named:
        assert name in outcome.err, (name, outcome.err)


# --- random file names ---------------------------------------------------------------------------------------

NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), max_size=24)
SUFFIX = st.sampled_from([".sql", ".SQL", ".Sql"])


@st.composite
def versions(draw) -> str:
    """`1`, `001.2_10`, `0.0`: integer parts of any size, zero-padded or not, joined by `.` or `_`."""
    text = ""
    for index, (number, zeros) in enumerate(draw(st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 2)), min_size=1, max_size=4))):
        text += (draw(st.sampled_from([".", "_"])) if index else "") + "0" * zeros + str(number)
    return text


LETTER = st.sampled_from("abcdefghijklmnopqrstuvwxyz")


@st.composite
def script_names(draw) -> Expected:
    kind = draw(st.sampled_from(["V", "V", "V", "R", "R", "invalid"]))
    suffix = draw(SUFFIX)
    if kind == "V":
        raw = draw(versions())
        if draw(st.booleans()):
            description = draw(NAME_TEXT)
            return Expected(f"V{raw}__{description}{suffix}", "V", raw.replace("_", "."), description.replace("_", " "))
        return Expected(f"V{raw}{suffix}", "V", raw.replace("_", "."), "")
    if kind == "R":
        description = draw(NAME_TEXT)
        return Expected(f"R__{description}{suffix}", "R", None, description.replace("_", " "))
    word = draw(LETTER) + draw(NAME_TEXT)
    form = draw(st.sampled_from([
        "v1__{w}", "V1_{w}", "X1__{w}", "R1__{w}", "V__{w}", "V1.__{w}", "V1..2__{w}", "V1a__{w}", "R_{w}", "x{w}", "U__{w}",
    ]))
    return Expected(form.format(w=word) + suffix, "invalid")


@st.composite
def script_sets(draw) -> list[tuple[str, Expected]]:
    """Scripts at random depths; (relative path, expected) pairs with distinct paths."""
    entries = draw(st.lists(st.tuples(st.lists(NAME_TEXT.filter(lambda d: d not in ("", ".", "..")), max_size=2), script_names()),
                            min_size=1, max_size=8))
    seen: dict[str, Expected] = {}
    for dirs, expected in entries:
        seen.setdefault("/".join([*dirs, expected.name]), expected)
    return sorted(seen.items())


def expected_plan(entries: list[tuple[str, Expected]]) -> tuple[list[str], list[list[str]]]:
    """(invalid paths, groups of paths that collide); with neither, the order info lists the scripts in."""
    invalid = [path for path, e in entries if e.kind == "invalid"]
    groups: dict[tuple, list[str]] = {}
    for path, e in entries:
        if e.kind != "invalid":
            groups.setdefault(e.key, []).append(path)
    return invalid, [paths for paths in groups.values() if len(paths) > 1]


def listing_order(entries: list[tuple[str, Expected]]) -> list[str]:
    versioned = sorted((e.key[1], path) for path, e in entries if e.kind == "V")
    repeatable = sorted((e.description.encode("utf-16-be"), path) for path, e in entries if e.kind == "R")
    return [path for _, path in versioned] + [path for _, path in repeatable]


@pytest.mark.stress
@HYPOTHESIS
@given(entries=script_sets())
def test_random_file_names_give_flyways_plan_or_exit_2_naming_the_files(url, tmp_path, entries, figure) -> None:
    TRIED["file name sets"] += 1
    figure("file name sets tried", TRIED["file name sets"])
    folder = fresh_folder(tmp_path)
    for index, (path, _) in enumerate(entries):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(f"select {index};\n")
    (folder / "notes.txt").write_text("not a script")
    number = {path: index for index, (path, _) in enumerate(entries)}
    entries = [(p, e) for p, e in entries if not any(part.startswith(".") for part in p.split("/")[:-1])]  # Flyway skips hidden folders
    flags = ["--url", url, "--locations", str(folder)]
    outcome = dbops(*flags, "--json", "info")
    invalid, collisions = expected_plan(entries)
    if invalid:
        assert_user_error(outcome, *(f"{folder}/{path}" for path in invalid))
        flags.append("--ignore-invalid-names")
        outcome = dbops(*flags, "--json", "info")
        entries = [(p, e) for p, e in entries if e.kind != "invalid"]
    if collisions:
        assert outcome.code == 2 and "Traceback" not in outcome.err, outcome.err
        assert any(sum(f"{folder}/{path} " in outcome.err + " " for path in group) >= 2 for group in collisions), outcome.err
        return
    if invalid:
        assert "skipped file names that fit no migration pattern" in outcome.err
    assert outcome.code == 0, outcome.err
    listed = outcome.json()["migrations"]
    assert [m["script"] for m in listed] == listing_order(entries)
    by_path = dict(entries)
    for m in listed:
        expected = by_path[m["script"]]
        assert (m["version"], m["description"], m["state"]) == (expected.version, expected.description, "Pending")
        assert m["checksum"] == flyway_checksum(f"select {number[m['script']]};\n".encode())
    plain = dbops(*flags, "info")
    assert plain.code == 0 and "Traceback" not in plain.err


# --- random bytes and line endings ---------------------------------------------------------------------------

LINE_ENDINGS = st.sampled_from(["\n", "\r\n", "\r", "", "\r\r\n", "\n\r"])
TEXT_WITH_ODD_BREAKS = st.text(
    st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(["\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\ufeff"])),
    max_size=40,
)


@st.composite
def script_texts(draw) -> bytes:
    lines = draw(st.lists(st.tuples(TEXT_WITH_ODD_BREAKS, LINE_ENDINGS), max_size=12))
    text = "".join(line + end for line, end in lines).replace("${", "$ {")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")


@pytest.mark.stress
@HYPOTHESIS
@given(data=st.one_of(script_texts(), st.binary(max_size=300)))
def test_random_bytes_give_flyways_checksum_or_exit_2_naming_the_file(url, tmp_path, data, figure) -> None:
    TRIED["script contents"] += 1
    figure("script contents tried", TRIED["script contents"])
    folder = fresh_folder(tmp_path)
    (folder / "V1__random.sql").write_bytes(data)
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert_user_error(outcome, f"{folder}/V1__random.sql", "not valid utf-8")
        return
    if "\x00" in text:  # no server takes a NUL in SQL text
        assert_user_error(outcome, f"{folder}/V1__random.sql:", "NUL byte")
        return
    if re.search(r"\$\{[^}\r\n]+\}", text):
        assert_user_error(outcome, f"{folder}/V1__random.sql:", "placeholder")
        return
    assert outcome.code == 0, outcome.err
    (entry,) = outcome.json()["migrations"]
    assert entry["checksum"] == flyway_checksum(data) == checksum(text)


@pytest.mark.stress
@pytest.mark.skipif(shutil.which("java") is None, reason="no JVM to run the Java transcription of Flyway's checksum")
@settings(max_examples=max(2, SCALE.examples // 10), deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(script_texts(), min_size=1, max_size=40))
def test_checksums_of_random_texts_are_what_java_computes(tmp_path, texts, figure) -> None:
    TRIED["texts checked against Java"] += len(texts)
    figure("texts checked against Java tried", TRIED["texts checked against Java"])
    folder = fresh_folder(tmp_path)
    paths = []
    for index, data in enumerate(texts):
        paths.append(folder / f"V{index}__t.sql")
        paths[-1].write_bytes(data)
    java = subprocess.run(["java", str(CHECKSUMS / "FlywayChecksum.java"), *map(str, paths)],
                          capture_output=True, text=True, timeout=120, check=True)
    from_java = dict(line.split("\t") for line in java.stdout.splitlines())
    for path, data in zip(paths, texts):
        assert int(from_java[path.name]) == checksum(data.decode("utf-8")) == flyway_checksum(data), repr(data)


def test_checksum_edges_at_javas_read_buffer() -> None:
    """A \\r\\n split across BufferedReader's 4096-char buffer, a BOM that is not first, separators that are not breaks."""
    for data in ("a" * 4095 + "\r\nb", "a" * 4096 + "\r", "\r" * 5000, "x\ufeff\r\ufeffy", "a\x85b\u2028c\x0cd"):
        raw = data.encode("utf-8")
        assert checksum(data) == flyway_checksum(raw)
    assert checksum("a\u2028b") != checksum("ab")


# --- placeholders ---------------------------------------------------------------------------------------------

PLACEHOLDER_NAME = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"), min_size=1, max_size=10)
VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@st.composite
def placeholder_cases(draw) -> tuple[dict[str, str], list[str], set[str]]:
    names = draw(st.lists(PLACEHOLDER_NAME, min_size=0, max_size=5, unique_by=str.lower))
    values = {name: draw(VALUE) for name in names}
    undefined = draw(st.lists(PLACEHOLDER_NAME.filter(lambda n: n.lower() not in {x.lower() for x in names}), max_size=2))
    pieces = draw(st.lists(st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="$\x00"), max_size=15),
        st.sampled_from(names).map(lambda n: ("ref", n)) if names else st.nothing(),
        st.sampled_from(undefined).map(lambda n: ("ref", n)) if undefined else st.nothing(),
    ), max_size=10))
    return values, pieces, {n.lower() for n in undefined}


def render(pieces: list, values: dict[str, str] | None, case: st.DataObject | None = None) -> str:
    lowered = {k.lower(): v for k, v in (values or {}).items()}
    out = []
    for piece in pieces:
        if isinstance(piece, tuple):
            out.append(lowered[piece[1].lower()] if values is not None else "${" + piece[1] + "}")
        else:
            out.append(piece)
    return "".join(out)


@pytest.mark.stress
@HYPOTHESIS
@given(case=placeholder_cases(), through_environment=st.booleans(), repeatable=st.booleans())
def test_random_placeholder_sets_replace_exactly_or_name_file_and_line(url, tmp_path, monkeypatch, case, through_environment, repeatable, figure) -> None:
    TRIED["placeholder sets"] += 1
    figure("placeholder sets tried", TRIED["placeholder sets"])
    values, pieces, undefined = case
    folder = fresh_folder(tmp_path)
    name = "R__placeholders.sql" if repeatable else "V1__placeholders.sql"
    template = render(pieces, None)
    (folder / name).write_bytes(template.encode("utf-8"))
    flags: list[str] = []
    for key, value in values.items():
        if through_environment and re.fullmatch(r"\w+", key):
            monkeypatch.setenv(f"DBOPS_PLACEHOLDER_{key.upper()}", value)
        else:
            flags.append(f"--placeholder={key}={value}")
    try:
        outcome = dbops("--url", url, "--locations", str(folder), *flags, "--json", "migrate", "--dry-run")
        info = dbops("--url", url, "--locations", str(folder), *flags, "--json", "info")
    finally:
        for key in values:
            monkeypatch.delenv(f"DBOPS_PLACEHOLDER_{key.upper()}", raising=False)
    first_undefined = next((p for p in pieces if isinstance(p, tuple) and p[1].lower() in undefined), None)
    if first_undefined is not None:
        offset = template.index("${" + first_undefined[1] + "}")
        line = len(re.findall(r"\r\n|\r|\n", template[:offset])) + 1
        assert_user_error(outcome, f"{folder}/{name}:{line}: no value for placeholder ${{{first_undefined[1]}}}")
        return
    assert outcome.code == 0, outcome.err
    (pending,) = outcome.json()["pending"]
    replaced = render(pieces, values)
    assert pending["sql"] == replaced
    assert info.json()["migrations"][0]["checksum"] == flyway_checksum((replaced if repeatable else template).encode("utf-8"))


def test_builtin_placeholders_and_values_that_look_like_placeholders(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    (folder / "V1__builtins.sql").write_text(
        "-- ${flyway:filename} ${flyway:defaultSchema} ${FLYWAY:TABLE} ${flyway:database} ${a}\r\nselect '${b}';")
    outcome = dbops("--url", url, "--locations", str(folder), "--placeholder", "a=${b}", "--placeholder", "B= x=y ",
                    "--json", "migrate", "--dry-run")
    assert outcome.code == 0, outcome.err
    database = url.split("?")[0].rsplit("/", 1)[-1]
    assert outcome.json()["pending"][0]["sql"] == (
        f"-- V1__builtins.sql public flyway_schema_history {database} ${{b}}\r\nselect ' x=y ';")
    for bad in ("novalue", "=value", " =x"):
        assert_user_error(dbops("--url", url, "--locations", str(folder), f"--placeholder={bad}", "info"), "--placeholder")


# --- odd files and folders ------------------------------------------------------------------------------------

def test_a_50_mb_script_is_planned_with_flyways_checksum(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    row = "insert into products (id, name, price) values ({0}, 'product {0}', {1});\r\n"
    body = "".join(row.format(i, i % 997) for i in range(660_000))
    data = ("\ufeffcreate table products (id int, name varchar(40), price int);\n" + body).encode()
    assert len(data) > 50 * 1024 * 1024
    (folder / "V1__seed.sql").write_bytes(data)
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    assert outcome.code == 0, outcome.err
    assert outcome.json()["migrations"][0]["checksum"] == flyway_checksum(data)


def test_deep_folders_are_scanned_and_too_deep_ones_are_named(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    deep = folder.joinpath(*[f"d{i}" for i in range(150)])
    deep.mkdir(parents=True)
    (deep / "V1__deep.sql").write_text("select 1;")
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    assert outcome.code == 0, outcome.err
    assert outcome.json()["migrations"][0]["script"].endswith("d149/V1__deep.sql")

    too_deep = fresh_folder(tmp_path)
    fd = os.open(too_deep, os.O_RDONLY)
    try:
        for _ in range(70):  # past PATH_MAX (4096 bytes): only reachable step by step
            os.mkdir("x" * 60, dir_fd=fd)
            fd, previous = os.open("x" * 60, os.O_RDONLY, dir_fd=fd), fd
            os.close(previous)
        with os.fdopen(os.open("V2__far.sql", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as script:
            script.write("select 2;")
    finally:
        os.close(fd)
    outcome = dbops("--url", url, "--locations", str(too_deep), "info")
    assert_user_error(outcome, str(too_deep), "File name too long")


def test_symlink_loops_and_links_to_one_folder_twice(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    (folder / "a").mkdir()
    (folder / "a" / "V1__x.sql").write_text("select 1;")
    os.symlink(folder, folder / "a" / "loop")
    os.symlink(folder / "a", folder / "again")
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    assert outcome.code == 0, outcome.err
    assert [m["script"] for m in outcome.json()["migrations"]] in (["a/V1__x.sql"], ["again/V1__x.sql"])

    os.symlink(folder / "V2__self.sql", folder / "V2__self.sql")
    assert_user_error(dbops("--url", url, "--locations", str(folder), "info"), f"{folder}/V2__self.sql", "symbolic links")


@pytest.mark.parametrize("kind", ["dangling symlink", "fifo", "device", "directory named .sql"])
def test_entries_that_are_not_readable_scripts(url, tmp_path, kind) -> None:
    folder = fresh_folder(tmp_path)
    (folder / "V1__ok.sql").write_text("select 1;")
    odd = folder / "V2__odd.sql"
    if kind == "dangling symlink":
        os.symlink(folder / "missing.sql", odd)
    elif kind == "fifo":
        os.mkfifo(odd)
    elif kind == "device":
        os.symlink("/dev/zero", odd)
    else:
        odd.mkdir()
        (odd / "V3__inside.sql").write_text("select 3;")
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    if kind == "directory named .sql":
        assert outcome.code == 0, outcome.err
        assert [m["script"] for m in outcome.json()["migrations"]] == ["V1__ok.sql", "V2__odd.sql/V3__inside.sql"]
        return
    assert_user_error(outcome, f"{folder}/V2__odd.sql")


def run_as_nobody(*args: str) -> tuple[int, str]:
    """`dbops ARGS` in a forked child that has dropped root for `nobody` (root reads files whatever their mode)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, only os._exit
        code = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.chdir(args[args.index("--locations") + 1])
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(list(args))
            os.write(write, err.getvalue().encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            os.write(write, f"Traceback: {exc!r}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read().decode()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), output


def test_a_file_the_user_may_not_read(url, tmp_path, monkeypatch) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dbops-unreadable-"))  # outside pytest's root-only tmp folder
    try:
        folder.chmod(0o755)
        (folder / "V1__ok.sql").write_text("select 1;")
        secret = folder / "V2__secret.sql"
        secret.write_text("select 2;")
        secret.chmod(0)
        if os.geteuid() == 0:
            code, err = run_as_nobody("--locations", str(folder), "lint")
            assert code == 2, err
            assert f"error: {secret}: cannot read: Permission denied" in err and "Traceback" not in err
        real_read = Path.read_bytes

        def refuse(path: Path) -> bytes:
            if path.name == secret.name:
                raise PermissionError(13, "Permission denied", str(path))
            return real_read(path)

        monkeypatch.setattr(Path, "read_bytes", refuse)
        assert_user_error(dbops("--url", url, "--locations", str(folder), "info"), f"{secret}: cannot read: Permission denied")
        monkeypatch.setenv("DBOPS_CONFIG", str(secret))
        monkeypatch.setattr(Path, "read_text", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
        assert_user_error(dbops("--url", url, "--locations", str(folder), "info"), f"{secret}: cannot read the config file")
    finally:
        shutil.rmtree(folder)


def test_a_file_name_that_is_not_utf8_is_named_and_refused(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    (folder / "V1__ok.sql").write_text("select 1;")
    with open(os.fsencode(folder) + b"/V2__caf\xe9.sql", "wb") as script:
        script.write(b"select 2;")
    for command in (["info"], ["migrate", "--direct"], ["lint"]):
        assert_user_error(dbops("--url", url, "--locations", str(folder), *command), f"{folder}/V2__caf\\xe9.sql", "not valid UTF-8")


def test_names_that_differ_only_by_case(url, tmp_path) -> None:
    folder = fresh_folder(tmp_path)
    (folder / "V1__orders.sql").write_text("select 1;")
    (folder / "V1__Orders.sql").write_text("select 2;")
    assert_user_error(dbops("--url", url, "--locations", str(folder), "info"),
                      f"{folder}/V1__Orders.sql and {folder}/V1__orders.sql have the same version")

    folder = fresh_folder(tmp_path)
    (folder / "R__views.sql").write_text("select 1;")
    (folder / "R__Views.sql").write_text("select 2;")
    (folder / "R__views.SQL").write_text("select 3;")
    assert_user_error(dbops("--url", url, "--locations", str(folder), "info"), "have the same description (views)")

    folder = fresh_folder(tmp_path)
    (folder / "R__views.sql").write_text("select 1;\nvacuum x;")
    (folder / "R__Views.sql").write_text("select 2;")
    (folder / "R__views.sql.conf").write_text("executeInTransaction=false\n")
    outcome = dbops("--url", url, "--locations", str(folder), "--json", "info")
    assert outcome.code == 0, outcome.err
    assert [m["description"] for m in outcome.json()["migrations"]] == ["Views", "views"]
    catalog = discover([ScriptFile(p.name, p.read_bytes(), str(folder)) for p in sorted(folder.iterdir())], PlaceholderContext())
    configs = {m.script: m.config.execute_in_transaction for m in catalog.repeatable}
    assert configs == {"R__Views.sql": None, "R__views.sql": False}


def test_descriptions_longer_than_the_history_column_still_validate(url, tmp_path, pg_server) -> None:
    folder = fresh_folder(tmp_path)
    (folder / ("V1__" + "d" * 220 + ".sql")).write_text("select 1;")
    (folder / ("R__" + "r" * 210 + ".sql")).write_text("select 2;")
    database = pg_server.url(pg_server.create_database("longdesc"))
    assert dbops("--url", database, "--locations", str(folder), "migrate", "--direct").code == 0
    outcome = dbops("--url", database, "--locations", str(folder), "validate")
    assert outcome.code == 0, outcome.out + outcome.err
    with psycopg.connect(database) as conn:
        recorded = sorted(d for (d,) in conn.execute("select description from flyway_schema_history"))
    assert recorded == ["d" * 197 + "...", "r" * 197 + "..."]  # as Flyway abbreviates them (AbbreviationUtils)
    assert "Nothing to migrate" in dbops("--url", database, "--locations", str(folder), "migrate", "--direct").out
    # Redshift's VARCHAR(200) counts bytes: the description comes back cut to 200 bytes.
    catalog = discover([ScriptFile("R__" + "é" * 150 + ".sql", b"select 2;")], PlaceholderContext())
    (migration,) = catalog.repeatable
    row = AppliedMigration(1, None, "é" * 100, "SQL", migration.script, migration.checksum, "u", None, 0, True)
    assert [e.state for e in build_plan(catalog, [row]).entries] == ["Success"]


def test_a_script_of_5000_statements_applies_completely_through_redshift_connector(rs_db, tmp_path) -> None:
    """redshift_connector 2.1.11's statement cache crashed this at statement 1,001 (a KeyError, exit 1)."""
    folder = fresh_folder(tmp_path)
    inserts = "".join(f"insert into big values ({n});\n" for n in range(1, 5000))
    (folder / "V1__big.sql").write_text("create table big (n int);\n" + inserts)
    outcome = dbops("--url", rs_db.url, "--locations", str(folder), "migrate", "--direct")
    assert outcome.code == 0, outcome.err
    with psycopg.connect(rs_db.pg_url) as conn:
        assert conn.execute("select count(*), count(distinct n), max(n) from big").fetchall() == [(4999, 4999, 4999)]
        history = conn.execute("select version, script, success from flyway_schema_history where type = 'SQL'").fetchall()
    assert history == [("1", "V1__big.sql", True)]


def test_a_nul_byte_is_refused_naming_file_and_line_before_anything_runs(tmp_path, pg_server) -> None:
    """psycopg refused the text mid-run (a traceback, exit 1); now discovery names the file and line."""
    folder = fresh_folder(tmp_path)
    (folder / "V1__ok.sql").write_text("create table ok (id int);")
    (folder / "V2__nul.sql").write_bytes(b"create table b (id int);\nselect 1;\0\n")
    database = pg_server.create_database("nul")
    for command in (("migrate", "--direct"), ("info",)):
        outcome = dbops("--url", pg_server.url(database), "--locations", str(folder), "--json", *command)
        assert_user_error(outcome, "V2__nul.sql:2:", "NUL byte", "remove the NUL byte")
        assert outcome.json()["exit_code"] == 2
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("select to_regclass('flyway_schema_history'), to_regclass('ok')").fetchall() == [(None, None)]


def test_a_version_longer_than_the_history_column_is_refused_when_discovered(url, tmp_path) -> None:
    """Flyway's version VARCHAR(50): `info` listed the script and migrate failed on its row (exit 1)."""
    folder = fresh_folder(tmp_path)
    name = "V" + ".".join(["1"] * 26) + "__x.sql"  # 51 characters of version
    (folder / name).write_text("select 1;")
    (folder / ("V" + ".".join(["1"] * 25) + "__fits.sql")).write_text("select 1;")
    for command in (("info",), ("migrate", "--direct")):
        outcome = dbops("--url", url, "--locations", str(folder), *command)
        assert_user_error(outcome, name, "51 characters", "more than the 50")
    (folder / name).unlink()
    assert dbops("--url", url, "--locations", str(folder), "info").code == 0
