"""Where a Redshift password comes from: the URL, DBOPS_PASSWORD, AWS Secrets Manager or temporary IAM credentials.

Secret values and tokens live only in `Credentials.password` (hidden from repr) and are never put in a message.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dbops.errors import ConfigError, ConnectError

ClientFactory = Callable[[str, str | None], Any]
IAM_DURATION_SECONDS = 900
REFRESH_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one or more connections; `expires_at` is a time.time() deadline."""

    user: str
    password: str = field(repr=False)
    source: str = "url"
    expires_at: float | None = None

    def fresh(self) -> bool:
        return self.expires_at is None or time.time() < self.expires_at - REFRESH_MARGIN_SECONDS


@dataclass(frozen=True)
class AuthOptions:
    """The credential-related parts of a redshift:// URL."""

    user: str
    password: str | None = field(repr=False)
    database: str
    secret_arn: str | None = None
    iam: bool = False
    cluster_identifier: str | None = None
    workgroup: str | None = None
    region: str | None = None
    auto_create: bool = False
    db_groups: tuple[str, ...] = ()

    def check(self) -> None:
        """Refuse combinations that cannot work, before anything is fetched."""
        if self.iam and self.secret_arn:
            raise ConfigError("redshift URL: use either iam=true or secret_arn=, not both")
        if self.iam and bool(self.cluster_identifier) == bool(self.workgroup):
            raise ConfigError(
                "redshift URL: iam=true needs cluster_identifier=<cluster> (provisioned) or workgroup=<name> (serverless)"
            )
        if (self.cluster_identifier or self.workgroup) and not self.iam:
            raise ConfigError("redshift URL: cluster_identifier= and workgroup= are used with iam=true; add iam=true")
        if not (self.iam or self.secret_arn or self.user):
            raise ConfigError("redshift URL needs a user (redshift://user@host:5439/db), or secret_arn=… or iam=true")


def default_client_factory(service: str, region: str | None) -> Any:
    """A boto3 client (imported on first use so `dbops info` on PostgreSQL never loads boto3)."""
    import boto3

    return boto3.client(service, region_name=region)


@contextmanager
def _no_wire_logging() -> Iterator[None]:
    """botocore logs response bodies at DEBUG, and these bodies hold the secret: keep botocore at INFO or above."""
    logger = logging.getLogger("botocore")
    previous = logger.level
    logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(previous)


def resolve(options: AuthOptions, client_factory: ClientFactory = default_client_factory) -> Credentials:
    """Credentials for `options`: IAM, then Secrets Manager, then the URL's password, then DBOPS_PASSWORD."""
    if options.iam:
        with _no_wire_logging():
            return _iam(options, client_factory)
    if options.secret_arn:
        with _no_wire_logging():
            return _secret(options, client_factory)
    if options.password is not None:
        return Credentials(options.user, options.password, "url")
    return Credentials(options.user, os.environ.get("DBOPS_PASSWORD", ""), "DBOPS_PASSWORD")


def region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return (parts[3] or None) if len(parts) > 3 and parts[0] == "arn" else None


def _aws_error(what: str, exc: Exception) -> ConnectError:
    return ConnectError(f"{what}: {type(exc).__name__}: {exc}. Check the AWS credentials, region and permissions")


def _secret(options: AuthOptions, client_factory: ClientFactory) -> Credentials:
    arn = options.secret_arn or ""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = client_factory("secretsmanager", options.region or region_of_arn(arn))
        response = client.get_secret_value(SecretId=arn)
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(f"cannot read secret {arn}", exc) from None
    try:
        value = json.loads(response.get("SecretString") or "")
        user, password = value.get("username"), value["password"]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ConfigError(
            f"secret {arn} does not hold a JSON object with \"username\" and \"password\" "
            "(the form Redshift's managed master password uses)"
        ) from None
    if not isinstance(password, str) or not (user or options.user):
        raise ConfigError(f"secret {arn}: \"username\" and \"password\" must be strings")
    return Credentials(options.user or str(user), password, "secret")


def _deadline(expiration: object) -> float:
    if isinstance(expiration, datetime):
        moment = expiration if expiration.tzinfo else expiration.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return time.time() + IAM_DURATION_SECONDS


def _iam(options: AuthOptions, client_factory: ClientFactory) -> Credentials:
    from botocore.exceptions import BotoCoreError, ClientError

    if options.workgroup:
        what = f"cannot get temporary IAM credentials for workgroup {options.workgroup}"
        try:
            client = client_factory("redshift-serverless", options.region)
            response = client.get_credentials(
                workgroupName=options.workgroup, dbName=options.database, durationSeconds=IAM_DURATION_SECONDS
            )
        except (BotoCoreError, ClientError) as exc:
            raise _aws_error(what, exc) from None
        return Credentials(response["dbUser"], response["dbPassword"], "iam", _deadline(response.get("expiration")))
    what = f"cannot get temporary IAM credentials for cluster {options.cluster_identifier}"
    try:
        client = client_factory("redshift", options.region)
        if options.user:
            request: dict[str, Any] = {
                "DbUser": options.user,
                "DbName": options.database,
                "ClusterIdentifier": options.cluster_identifier,
                "DurationSeconds": IAM_DURATION_SECONDS,
                "AutoCreate": options.auto_create,
            }
            if options.db_groups:
                request["DbGroups"] = list(options.db_groups)
            response = client.get_cluster_credentials(**request)
        else:
            response = client.get_cluster_credentials_with_iam(
                DbName=options.database, ClusterIdentifier=options.cluster_identifier, DurationSeconds=IAM_DURATION_SECONDS
            )
    except (BotoCoreError, ClientError) as exc:
        raise _aws_error(what, exc) from None
    return Credentials(response["DbUser"], response["DbPassword"], "iam", _deadline(response.get("Expiration")))
