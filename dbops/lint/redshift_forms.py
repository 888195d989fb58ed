"""Redshift statements sqlglot does not parse, written out from the Redshift SQL reference's syntax.

Each form is matched, whole, against a statement's canonical tokens (`syntax.canonical`: words upper-cased
and separated by one space, strings as 'S', numbers as 9). A form names its keywords, so a misspelt keyword
matches none; free expressions (a policy's USING, a procedure's arguments) are taken as they are, since the
parentheses around them are checked before.
"""
from __future__ import annotations

import re

_MACROS = {
    "id": r'(?:[A-Z_][A-Z0-9_$]*|"Q")',
    "s": r"'S'",
    "n": r"(?:- )?9",
    "args": r"\((?: .*?)? \)",
}
_MACROS["name"] = r"{id}(?: \. {id})*".format(**_MACROS)
_MACROS["ids"] = r"{id}(?: , {id})*".format(**_MACROS)
_MACROS["names"] = r"{name}(?: , {name})*".format(**_MACROS)
_MACROS["value"] = r"(?:{s}|{n}|{id})".format(**_MACROS)
_MACROS["role"] = r"(?:DEFAULT|{s})".format(**_MACROS)
_MACROS["grantee"] = r"(?:GROUP {id}|ROLE {id}|PUBLIC|(?!(?:GROUP|ROLE)(?: |$)){id})".format(**_MACROS)
_MACROS["grantees"] = r"{grantee}(?: , {grantee})*".format(**_MACROS)
_MACROS["priv"] = (r"(?:ALL(?: PRIVILEGES)?|(?:SELECT|INSERT|UPDATE|DELETE|DROP|REFERENCES|ALTER|TRUNCATE|CREATE|"
                   r"TEMPORARY|TEMP|USAGE|EXECUTE|ASSUMEROLE|SHARE)(?: \( {ids} \))?)").format(**_MACROS)
_MACROS["privs"] = r"{priv}(?: , {priv})*".format(**_MACROS)
_MACROS["routine"] = r"{name} {args}".format(**_MACROS)
_MACROS["on"] = (
    r"ON (?:(?:TABLE )?{names}|ALL TABLES IN SCHEMA {ids}|SCHEMA {ids}|DATABASE {ids}|"
    r"(?:FUNCTION|PROCEDURE) {routine}(?: , {routine})*|ALL (?:FUNCTIONS|PROCEDURES) IN SCHEMA {ids}|"
    r"LANGUAGE {ids}|MODEL {names}|DATASHARE {id}|COPY JOB {ids})"
).format(**_MACROS)
_MACROS["sysprivs"] = (r"(?:CREATE|ALTER|DROP|ACCESS|IGNORE|EXPLAIN|TRUNCATE|ANALYZE|VACUUM)"
                       r"(?: (?:ANY|SYSTEM|CATALOG|RLS|MASKING|EXTERNAL|MATERIALIZED))? "
                       r"(?:USER|ROLE|SCHEMA|TABLE|VIEW|FUNCTION|PROCEDURE|MODEL|DATASHARE|LIBRARY|DATABASE|"
                       r"POLICY|TABLE|TABLES|VIEW|PLAN|TABLE PERMISSIONS|ROLES|TABLE DIRECTLY)")
_MACROS["useropt"] = (
    r"(?:PASSWORD (?:{s}|DISABLE)|CREATEDB|NOCREATEDB|CREATEUSER|NOCREATEUSER|SYSLOG ACCESS (?:RESTRICTED|UNRESTRICTED)|"
    r"IN GROUP {ids}|VALID UNTIL {s}|CONNECTION LIMIT (?:{n}|UNLIMITED)|SESSION TIMEOUT {n}|EXTERNALID {s})"
).format(**_MACROS)
_MACROS["unload_opt"] = (
    r"(?:IAM_ROLE {role}|CREDENTIALS(?: AS)? {s}|ACCESS_KEY_ID {s}|SECRET_ACCESS_KEY {s}|SESSION_TOKEN {s}|"
    r"FORMAT(?: AS)? (?:CSV|PARQUET|JSON)|CSV|PARQUET|JSON|PARTITION BY \( {ids} \)(?: INCLUDE)?|MANIFEST(?: VERBOSE)?|"
    r"HEADER|DELIMITER(?: AS)? {s}|FIXEDWIDTH(?: AS)? {s}|ENCRYPTED(?: AUTO)?|KMS_KEY_ID {s}|MASTER_SYMMETRIC_KEY {s}|"
    r"BZIP2|GZIP|ZSTD|ADDQUOTES|NULL(?: AS)? {s}|ESCAPE|ALLOWOVERWRITE|CLEANPATH|PARALLEL(?: (?:ON|OFF|TRUE|FALSE))?|"
    r"(?:MAXFILESIZE|ROWGROUPSIZE)(?: AS)? {n}(?: (?:MB|GB))?|REGION(?: AS)? {s}|EXTENSION {s})"
).format(**_MACROS)
_MACROS["schema_opt"] = (
    r"(?:DATABASE {s}|SCHEMA {s}|REGION {s}|URI {s}|PORT {n}|IAM_ROLE {role}|SECRET_ARN {s}|CATALOG_ROLE {role}|"
    r"CATALOG_ID {s}|AUTHENTICATION (?:NONE|IAM|MTLS)|AUTHENTICATION_ARN {s}|CREATE EXTERNAL DATABASE IF NOT EXISTS)"
).format(**_MACROS)
_MACROS["copy_opt"] = (
    r"(?:IAM_ROLE {role}|(?:WITH )?CREDENTIALS(?: AS)? {s}|ACCESS_KEY_ID {s}|SECRET_ACCESS_KEY {s}|SESSION_TOKEN {s}|"
    r"MASTER_SYMMETRIC_KEY {s}|ENCRYPTED|(?:FORMAT(?: AS)? )?(?:CSV(?: QUOTE(?: AS)? {s})?|DELIMITER(?: AS)? {s}|"
    r"FIXEDWIDTH(?: AS)? {s}|SHAPEFILE(?: SIMPLIFY(?: AUTO)?(?: {n})?)?|(?:AVRO|JSON)(?: AS)? {s}|PARQUET|ORC)|"
    r"BZIP2|GZIP|LZOP|ZSTD|ACCEPTANYDATE|ACCEPTINVCHARS(?: AS)?(?: {s})?|BLANKSASNULL|DATEFORMAT(?: AS)? {s}|"
    r"EMPTYASNULL|ENCODING(?: AS)? (?:UTF8|UTF16|UTF16LE|UTF16BE)|ESCAPE|EXPLICIT_IDS|FILLRECORD|IGNOREBLANKLINES|"
    r"IGNOREHEADER(?: AS)? {n}|NULL AS {s}|REMOVEQUOTES|ROUNDEC|TIMEFORMAT(?: AS)? {s}|TRIMBLANKS|TRUNCATECOLUMNS|"
    r"COMPROWS {n}|COMPUPDATE(?: (?:ON|TRUE|OFF|FALSE|PRESET))?|IGNOREALLERRORS|MAXERROR(?: AS)? {n}|NOLOAD|"
    r"STATUPDATE(?: (?:ON|TRUE|OFF|FALSE))?|MANIFEST|REGION(?: AS)? {s}|READRATIO {n}|SSH|SERIALIZETOJSON|"
    r"JOB CREATE {id}(?: AUTO (?:ON|OFF))?)"
).format(**_MACROS)
_MACROS["quota"] = r"QUOTA (?:{n} (?:MB|GB|TB)|UNLIMITED)".format(**_MACROS)
_MACROS["library_opt"] = r"(?:IAM_ROLE {role}|(?:WITH )?CREDENTIALS(?: AS)? {s}|REGION(?: AS)? {s})".format(**_MACROS)
_MACROS["type"] = r"{id}(?: (?:PRECISION|VARYING|WITHOUT TIME ZONE|WITH TIME ZONE))?(?: \( [^()]* \))?".format(**_MACROS)

# (statement, where its syntax is documented, form)
_FORMS = [
    ("BEGIN", "r_BEGIN",
     r"(?:BEGIN|START TRANSACTION)(?: (?:TRANSACTION|WORK))?(?: ISOLATION LEVEL "
     r"(?:SERIALIZABLE|SNAPSHOT|READ COMMITTED|READ UNCOMMITTED|REPEATABLE READ))?(?: READ (?:WRITE|ONLY))?"),
    ("ABORT", "r_ABORT", r"(?:ABORT|END|COMMIT|ROLLBACK)(?: (?:TRANSACTION|WORK))?"),
    ("VACUUM", "r_VACUUM_command",
     r"VACUUM(?: (?:FULL|SORT ONLY|DELETE ONLY|REINDEX|RECLUSTER))?(?: {name})?(?: TO {n} PERCENT)?(?: BOOST)?"),
    ("ANALYZE COMPRESSION", "r_ANALYZE_COMPRESSION",
     r"ANALYZE COMPRESSION(?: {name}(?: \( {ids} \))?)?(?: COMPROWS {n})?"),
    ("SET", "r_SET", r"SET (?:SESSION |LOCAL )?(?:{id} (?:TO|=) (?:DEFAULT|{value}(?: , {value})*)|"
                     r"SESSION AUTHORIZATION (?:DEFAULT|{value})|TIME ZONE (?:LOCAL|DEFAULT|{value}))"),
    ("RESET", "r_RESET", r"RESET (?:ALL|SESSION AUTHORIZATION|{id})"),
    ("SHOW", "r_SHOW", r"SHOW (?:ALL|{id}|(?:EXTERNAL )?TABLE {name}(?: PARTITION)?|VIEW {name}|MODEL (?:ALL|{name})|"
                       r"PROCEDURE {routine}|PROCEDURE {name}|DATASHARES(?: LIKE {s})?|"
                       r"(?:DATABASES|SCHEMAS|TABLES|COLUMNS|GRANTS|FUNCTIONS|PARAMETERS|COLUMN GRANTS|POLICIES)(?: .+)?)"),
    ("LOCK", "r_LOCK", r"LOCK(?: TABLE)? {names}"),
    ("CALL", "r_CALL_procedure", r"CALL {routine}"),
    ("CANCEL", "r_CANCEL", r"CANCEL {n}(?: {s})?"),
    ("PREPARE", "r_PREPARE", r"PREPARE {id}(?: \( [^()]* \))? AS .+"),
    ("EXECUTE", "r_EXECUTE", r"EXECUTE {id}(?: {args})?"),
    ("DEALLOCATE", "r_DEALLOCATE", r"DEALLOCATE(?: PREPARE)? (?:ALL|{id})"),
    ("COMMENT ON", "r_COMMENT",
     r"COMMENT ON (?:TABLE|COLUMN|VIEW|DATABASE|CONSTRAINT {id} ON) {name} IS (?:NULL|{s})"),
    ("MERGE … REMOVE DUPLICATES", "r_MERGE",
     r"MERGE INTO {name}(?: (?:AS )?{id})? USING {name}(?: (?:AS )?{id})? ON .+ REMOVE DUPLICATES"),
    ("REFRESH MATERIALIZED VIEW", "materialized-view-refresh-sql-command",
     r"REFRESH MATERIALIZED VIEW {name}(?: (?:RESTRICT|CASCADE))?"),
    ("ALTER MATERIALIZED VIEW", "r_ALTER_MATERIALIZED_VIEW",
     r"ALTER MATERIALIZED VIEW {name} (?:AUTO REFRESH (?:YES|NO)|RENAME TO {id}|OWNER TO {id}|"
     r"ROW LEVEL SECURITY (?:ON|OFF)(?: CONJUNCTION TYPE (?:AND|OR))?(?: FOR DATASHARES)?)"),
    ("ALTER TABLE", "r_ALTER_TABLE",
     r"ALTER TABLE {name} (?:OWNER TO {id}|ALTER ENCODE AUTO|"
     r"ALTER (?:COLUMN )?{id} ENCODE {id}(?: , ALTER (?:COLUMN )?{id} ENCODE {id})*|"
     r"ROW LEVEL SECURITY (?:ON|OFF)(?: CONJUNCTION TYPE (?:AND|OR))?(?: FOR DATASHARES)?|"
     r"ALTER (?:COMPOUND |INTERLEAVED )?SORTKEY (?:AUTO|NONE|\( {ids} \))|ALTER DISTKEY {id}|"
     r"ALTER DISTSTYLE (?:ALL|EVEN|AUTO|KEY DISTKEY {id})|"
     r"SET (?:TABLE PROPERTIES \( .+ \)|LOCATION {s}|FILE FORMAT {id})|"
     r"ADD(?: IF NOT EXISTS)? PARTITION \( .+ \) LOCATION {s}(?: PARTITION \( .+ \) LOCATION {s})*|"
     r"DROP PARTITION \( .+ \)|PARTITION \( .+ \) SET LOCATION {s})"),
    ("ALTER TABLE APPEND", "r_ALTER_TABLE_APPEND",
     r"ALTER TABLE {name} APPEND FROM {name}(?: (?:IGNOREEXTRA|FILLTARGET))?"),
    ("COPY", "r_COPY", r"COPY {name}(?: \( {ids} \))? FROM {s}(?: {copy_opt})*"),
    ("UNLOAD", "r_UNLOAD", r"UNLOAD \( {s} \) TO {s}(?: {unload_opt})*"),
    ("CREATE EXTERNAL SCHEMA", "r_CREATE_EXTERNAL_SCHEMA",
     r"CREATE EXTERNAL SCHEMA(?: IF NOT EXISTS)? {id} FROM "
     r"(?:DATA CATALOG|HIVE METASTORE|POSTGRES|MYSQL|REDSHIFT|KAFKA|MSK|KINESIS)(?: {schema_opt})*"),
    ("CREATE EXTERNAL TABLE", "r_CREATE_EXTERNAL_TABLE",
     r"CREATE EXTERNAL TABLE {name} \( .+? \)(?: PARTITIONED BY \( .+? \))?"
     r"(?: ROW FORMAT (?:DELIMITED(?: (?:FIELDS|LINES|COLLECTION ITEMS|MAP KEYS) TERMINATED BY {s})*|"
     r"SERDE {s}(?: WITH SERDEPROPERTIES \( .+? \))?))?"
     r"(?: STORED AS (?:INPUTFORMAT {s} OUTPUTFORMAT {s}|{id}))?(?: LOCATION {s})?(?: TABLE PROPERTIES \( .+? \))?"),
    ("CREATE EXTERNAL FUNCTION", "r_CREATE_EXTERNAL_FUNCTION",
     r"CREATE(?: OR REPLACE)? EXTERNAL FUNCTION {routine} RETURNS {type} (?:VOLATILE|STABLE|IMMUTABLE) "
     r"(?:LAMBDA|SAGEMAKER) {s} IAM_ROLE {role}(?: RETRY_TIMEOUT {n})?(?: MAX_BATCH_ROWS {n})?"
     r"(?: MAX_BATCH_SIZE {n} (?:KB|MB))?"),
    ("CREATE PROCEDURE", "r_CREATE_PROCEDURE",
     r"CREATE(?: OR REPLACE)? PROCEDURE {routine}(?: NONATOMIC)? AS \$\$ LANGUAGE PLPGSQL"
     r"(?: SECURITY (?:INVOKER|DEFINER))?(?: SET {id} (?:TO|=) (?:DEFAULT|{value}(?: , {value})*))?"),
    ("CREATE LIBRARY", "r_CREATE_LIBRARY",
     r"CREATE(?: OR REPLACE)? LIBRARY {id} LANGUAGE PLPYTHONU FROM {s}(?: {library_opt})*"),
    ("DROP LIBRARY", "r_DROP_LIBRARY", r"DROP LIBRARY {id}"),
    ("CREATE USER", "r_CREATE_USER", r"CREATE USER {id}(?: WITH)?(?: {useropt})*"),
    ("ALTER USER", "r_ALTER_USER",
     r"ALTER USER {id} (?:RENAME TO {id}|SET {id} (?:TO|=) (?:DEFAULT|{value}(?: , {value})*)|RESET {id}|"
     r"(?:WITH )?{useropt}(?: {useropt})*)"),
    ("DROP USER", "r_DROP_USER", r"DROP USER(?: IF EXISTS)? {ids}"),
    ("CREATE GROUP", "r_CREATE_GROUP", r"CREATE GROUP {id}(?: WITH)?(?: USER {ids})?"),
    ("ALTER GROUP", "r_ALTER_GROUP", r"ALTER GROUP {id} (?:(?:ADD|DROP) USER {ids}|RENAME TO {id})"),
    ("DROP GROUP", "r_DROP_GROUP", r"DROP GROUP {id}"),
    ("CREATE ROLE", "r_CREATE_ROLE", r"CREATE ROLE {id}(?: EXTERNALID {s})?"),
    ("ALTER ROLE", "r_ALTER_ROLE", r"ALTER ROLE {id} (?:WITH )?(?:RENAME TO {id}|OWNER TO {id}|EXTERNALID TO {s})"),
    ("DROP ROLE", "r_DROP_ROLE", r"DROP ROLE {id}(?: (?:FORCE|RESTRICT))?"),
    ("GRANT", "r_GRANT",
     r"GRANT (?:{privs} {on}|{sysprivs}(?: , {sysprivs})*|CREATE MODEL) TO {grantees}(?: WITH GRANT OPTION)?"),
    ("GRANT ROLE", "r_GRANT", r"GRANT ROLE {id}(?: , ROLE {id})* TO {grantee}(?: WITH ADMIN OPTION)?"),
    ("GRANT USAGE ON DATASHARE", "r_GRANT",
     r"GRANT (?:USAGE|ALTER|SHARE|ALL) ON DATASHARE {id} TO (?:ACCOUNT {s}(?: VIA DATA CATALOG)?|NAMESPACE {s}|{grantees})"),
    ("REVOKE", "r_REVOKE",
     r"REVOKE(?: GRANT OPTION FOR| ADMIN OPTION FOR)? (?:{privs} {on}|{sysprivs}(?: , {sysprivs})*|CREATE MODEL|"
     r"ROLE {id}(?: , ROLE {id})*) FROM {grantees}(?: (?:CASCADE|RESTRICT))?"),
    ("REVOKE USAGE ON DATASHARE", "r_REVOKE",
     r"REVOKE (?:USAGE|ALTER|SHARE|ALL) ON DATASHARE {id} FROM (?:ACCOUNT {s}(?: VIA DATA CATALOG)?|NAMESPACE {s}|{grantees})"),
    ("ALTER DEFAULT PRIVILEGES", "r_ALTER_DEFAULT_PRIVILEGES",
     r"ALTER DEFAULT PRIVILEGES(?: FOR (?:USER|ROLE) {ids})?(?: IN SCHEMA {ids})? "
     r"(?:GRANT {privs} ON (?:TABLES|FUNCTIONS|PROCEDURES) TO {grantees}(?: WITH GRANT OPTION)?|"
     r"REVOKE(?: GRANT OPTION FOR)? {privs} ON (?:TABLES|FUNCTIONS|PROCEDURES) FROM {grantees}(?: RESTRICT)?)"),
    ("CREATE SCHEMA", "r_CREATE_SCHEMA",
     r"CREATE SCHEMA(?: IF NOT EXISTS)?(?: {id})?(?: AUTHORIZATION {id})?(?: {quota})?"),
    ("ALTER SCHEMA", "r_ALTER_SCHEMA", r"ALTER SCHEMA {id} (?:RENAME TO {id}|OWNER TO {id}|{quota})"),
    ("CREATE DATASHARE", "r_CREATE_DATASHARE",
     r"CREATE DATASHARE {id}(?: SET)?(?: PUBLICACCESSIBLE(?: =)? (?:TRUE|FALSE))?(?: MANAGEDBY ADX)?"),
    ("ALTER DATASHARE", "r_ALTER_DATASHARE",
     r"ALTER DATASHARE {id} (?:(?:ADD|REMOVE) (?:TABLE {names}|SCHEMA {ids}|FUNCTION {routine}(?: , {routine})*|"
     r"ALL (?:TABLES|FUNCTIONS) IN SCHEMA {ids})|SET PUBLICACCESSIBLE(?: =)? (?:TRUE|FALSE)|"
     r"SET INCLUDENEW(?: =)? (?:TRUE|FALSE) FOR SCHEMA {id})"),
    ("DROP DATASHARE", "r_DROP_DATASHARE", r"DROP DATASHARE {id}"),
    ("CREATE DATABASE", "r_CREATE_DATABASE",
     r"CREATE DATABASE {id}(?: FROM DATASHARE {id} OF(?: ACCOUNT {s})? NAMESPACE {s}(?: WITH PERMISSIONS)?|"
     r"(?: WITH)?(?: (?:OWNER(?: =)? {id}|CONNECTION LIMIT (?:{n}|UNLIMITED)|COLLATE (?:CASE_SENSITIVE|CASE_INSENSITIVE)|"
     r"ISOLATION LEVEL (?:SERIALIZABLE|SNAPSHOT)))*)"),
    ("ALTER DATABASE", "r_ALTER_DATABASE",
     r"ALTER DATABASE {id} (?:RENAME TO {id}|OWNER TO {id}|CONNECTION LIMIT (?:{n}|UNLIMITED)|"
     r"COLLATE (?:CASE_SENSITIVE|CASE_INSENSITIVE)|ISOLATION LEVEL (?:SERIALIZABLE|SNAPSHOT))"),
    ("CREATE RLS POLICY", "r_CREATE_RLS_POLICY",
     r"CREATE RLS POLICY {id}(?: WITH \( .+? \)(?: AS {id})?)? USING \( .+ \)"),
    ("ALTER RLS POLICY", "r_ALTER_RLS_POLICY", r"ALTER RLS POLICY {id} USING \( .+ \)"),
    ("ATTACH/DETACH RLS POLICY", "r_ATTACH_RLS_POLICY",
     r"(?:ATTACH RLS POLICY {id} ON(?: TABLE)? {names} TO|DETACH RLS POLICY {id} ON(?: TABLE)? {names} FROM) {grantees}"),
    ("DROP RLS POLICY", "r_DROP_RLS_POLICY", r"DROP RLS POLICY(?: IF EXISTS)? {id}(?: (?:CASCADE|RESTRICT))?"),
    ("CREATE MASKING POLICY", "r_CREATE_MASKING_POLICY",
     r"CREATE MASKING POLICY {id} WITH \( .+? \) USING \( .+ \)"),
    ("ATTACH/DETACH MASKING POLICY", "r_ATTACH_MASKING_POLICY",
     r"(?:ATTACH MASKING POLICY {id} ON {name} \( {ids} \)(?: USING \( {ids} \))? TO {grantees}(?: PRIORITY {n})?|"
     r"DETACH MASKING POLICY {id} ON {name} \( {ids} \) FROM {grantees})"),
    ("DROP MASKING POLICY", "r_DROP_MASKING_POLICY", r"DROP MASKING POLICY {id}"),
]

FORMS: list[tuple[str, str, re.Pattern[str]]] = [
    (statement, f"https://docs.aws.amazon.com/redshift/latest/dg/{page}.html", re.compile(form.format(**_MACROS)))
    for statement, page, form in _FORMS
]


def family(canonical: str) -> tuple[str, str] | None:
    """The statement (and its documentation page) whose Redshift forms `canonical` starts like, or None."""
    known = [(statement, url) for statement, url, _ in FORMS
             if "/" not in statement and "…" not in statement and f"{canonical} ".startswith(f"{statement} ")]
    return max(known, key=lambda k: len(k[0])) if known else None


def recognised(canonical: str) -> str | None:
    """The statement a Redshift form recognises `canonical` as, or None."""
    for statement, _, pattern in FORMS:
        if pattern.fullmatch(canonical):
            return statement
    return None
