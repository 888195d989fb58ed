"""Deploy network.yaml and redshift.yaml with moto and check what they built.

The stacks go through CloudFormation (boto3 create_stack) exactly as written, under
non-default stack names so the cross-stack exports are really followed; the
assertions read the resulting resources back through the EC2, Redshift, Logs and
KMS APIs. What moto ignores (ManageMasterPassword, parameter group values, inline
egress rules) is asserted on the template itself at the end of this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from infra_templates import INFRA, choose, load_template, sub_text
from moto import mock_aws
from moto.redshift.models import Cluster as MotoCluster

REGION = "us-east-1"  # moto answers Fn::GetAZs "" with us-east-1 zones whatever the region
NETWORK_STACK = "acme-net"
NETWORK3_STACK = "acme-net3"  # with the third private subnet Redshift Serverless needs
REDSHIFT_STACK = "acme-dw"
CLUSTER_ID = "acme-warehouse"


@dataclass
class Deployment:
    network: dict[str, str]
    redshift: dict[str, str]
    network3: dict[str, str]
    statuses: dict[str, str]


def _patch_moto_cluster_attributes(mp: pytest.MonkeyPatch) -> None:
    """Two gaps of moto 5.2's Fn::GetAtt on AWS::Redshift::Cluster, filled so the
    template deploys unchanged: MasterPasswordSecretArn is unknown to it (answered
    the way Redshift names the managed secret), and Endpoint.Address returns the
    whole {"Address", "Port"} structure instead of the host name."""
    has_attr = MotoCluster.has_cfn_attr.__func__  # type: ignore[attr-defined]
    get_attr = MotoCluster.get_cfn_attribute

    def has_cfn_attr(cls: type, attr: str) -> bool:
        return attr == "MasterPasswordSecretArn" or has_attr(cls, attr)

    def get_cfn_attribute(self: MotoCluster, attr: str) -> Any:
        if attr == "MasterPasswordSecretArn":
            return secret_arn_for(self.cluster_identifier, self.master_username)
        if attr == "Endpoint.Address":
            return self.address
        return get_attr(self, attr)

    mp.setattr(MotoCluster, "has_cfn_attr", classmethod(has_cfn_attr))
    mp.setattr(MotoCluster, "get_cfn_attribute", get_cfn_attribute)


def secret_arn_for(cluster_identifier: str, username: str) -> str:
    return (
        f"arn:aws:secretsmanager:{REGION}:123456789012:secret:"
        f"redshift!{cluster_identifier}-{username}-AbCdEf"
    )


def _create(cf: Any, name: str, template: str, **params: str) -> tuple[dict[str, str], str]:
    cf.create_stack(
        StackName=name,
        TemplateBody=(INFRA / template).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cf.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs, stack["StackStatus"]


@pytest.fixture(scope="module")
def deployed(fake_aws_credentials: None) -> Iterator[Deployment]:
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        _patch_moto_cluster_attributes(mp)
        cf = boto3.client("cloudformation", region_name=REGION)
        network, net_status = _create(cf, NETWORK_STACK, "network.yaml")
        redshift, rs_status = _create(
            cf, REDSHIFT_STACK, "redshift.yaml",
            NetworkStackName=NETWORK_STACK, ClusterIdentifier=CLUSTER_ID,
        )
        network3, net3_status = _create(
            cf, NETWORK3_STACK, "network.yaml",
            VpcCidr="10.41.0.0/16", PublicSubnet1Cidr="10.41.0.0/24",
            PublicSubnet2Cidr="10.41.1.0/24", PrivateSubnet1Cidr="10.41.16.0/20",
            PrivateSubnet2Cidr="10.41.32.0/20", PrivateSubnet3Cidr="10.41.48.0/20",
        )
        yield Deployment(
            network, redshift, network3,
            {"network": net_status, "redshift": rs_status, "network3": net3_status},
        )


@pytest.fixture(scope="module")
def ec2(deployed: Deployment) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture(scope="module")
def redshift(deployed: Deployment) -> Any:
    return boto3.client("redshift", region_name=REGION)


@pytest.fixture(scope="module")
def cluster(deployed: Deployment, redshift: Any) -> dict[str, Any]:
    (only,) = redshift.describe_clusters()["Clusters"]
    return only


def _exports() -> dict[str, str]:
    """Export name -> value. moto 5.2 also lists the exports of outputs whose condition
    is false, without a value; CloudFormation creates no export for them."""
    listed = boto3.client("cloudformation", region_name=REGION).list_exports()["Exports"]
    return {e["Name"]: e["Value"] for e in listed if "Value" in e}


def _default_route(ec2: Any, route_table_id: str) -> dict[str, Any]:
    (table,) = ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"]
    (route,) = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    return route


# ------------------------------------------------------------------ network


def test_stacks_deploy(deployed: Deployment) -> None:
    assert set(deployed.statuses.values()) == {"CREATE_COMPLETE"}


def test_network_exports_what_the_other_stacks_import(deployed: Deployment) -> None:
    exports = _exports()
    for key in ("VpcId", "PrivateSubnet1Id", "PrivateSubnet2Id",
                "BuildSecurityGroupId", "DagsterSecurityGroupId"):
        assert exports[f"{NETWORK_STACK}-{key}"] == deployed.network[key]
    for key in ("Endpoint", "Port", "DbopsUrl", "SecretArn", "KmsKeyArn"):
        assert exports[f"{REDSHIFT_STACK}-{key}"] == deployed.redshift[key]


def test_private_subnets_span_two_azs(deployed: Deployment, ec2: Any) -> None:
    ids = [deployed.network["PrivateSubnet1Id"], deployed.network["PrivateSubnet2Id"]]
    subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    assert {s["VpcId"] for s in subnets} == {deployed.network["VpcId"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)


def test_third_private_subnet_only_when_asked(deployed: Deployment, ec2: Any) -> None:
    assert "PrivateSubnet3Id" not in deployed.network
    ids = [deployed.network3[f"PrivateSubnet{i}Id"] for i in (1, 2, 3)]
    subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    assert {s["VpcId"] for s in subnets} == {deployed.network3["VpcId"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 3
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    exports = _exports()
    assert exports[f"{NETWORK3_STACK}-PrivateSubnet3Id"] == ids[2]
    assert f"{NETWORK_STACK}-PrivateSubnet3Id" not in exports


def test_private_route_tables_leave_through_the_nat_of_their_az(
    deployed: Deployment, ec2: Any
) -> None:
    for i in ("1", "2"):
        route = _default_route(ec2, deployed.network[f"PrivateRouteTable{i}Id"])
        assert "NatGatewayId" in route and not route.get("GatewayId")
        (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[route["NatGatewayId"]])["NatGateways"]
        assert nat["SubnetId"] == deployed.network[f"PublicSubnet{i}Id"]
        (public, private) = ec2.describe_subnets(
            SubnetIds=[nat["SubnetId"], deployed.network[f"PrivateSubnet{i}Id"]]
        )["Subnets"]
        assert public["AvailabilityZone"] == private["AvailabilityZone"]


def test_only_the_public_route_table_reaches_the_internet_gateway(
    deployed: Deployment, ec2: Any
) -> None:
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [deployed.network["VpcId"]]}]
    )["RouteTables"]
    to_igw = [
        t["RouteTableId"] for t in tables
        if any(r.get("GatewayId", "").startswith("igw-") for r in t["Routes"])
    ]
    assert len(to_igw) == 1
    assert to_igw[0] not in (
        deployed.network["PrivateRouteTable1Id"], deployed.network["PrivateRouteTable2Id"]
    )


def test_public_subnets_hold_one_nat_per_az(deployed: Deployment, ec2: Any) -> None:
    ids = [deployed.network["PublicSubnet1Id"], deployed.network["PublicSubnet2Id"]]
    subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    nats = ec2.describe_nat_gateways(
        Filters=[{"Name": "vpc-id", "Values": [deployed.network["VpcId"]]}]
    )["NatGateways"]
    assert sorted(n["SubnetId"] for n in nats) == sorted(ids)


def test_subnets_are_associated_with_the_right_route_tables() -> None:
    """moto keeps CloudFormation's subnet associations out of its EC2 API: read them
    from the template."""
    resources = load_template("network.yaml")["Resources"]
    associations = {
        r["Properties"]["SubnetId"]["Ref"]: r["Properties"]["RouteTableId"]["Ref"]
        for r in resources.values() if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
    }
    assert associations == {
        "PublicSubnet1": "PublicRouteTable",
        "PublicSubnet2": "PublicRouteTable",
        "PrivateSubnet1": "PrivateRouteTable1",
        "PrivateSubnet2": "PrivateRouteTable2",
        # the Serverless-only subnet shares the first table: S3 endpoint, first NAT
        "PrivateSubnet3": "PrivateRouteTable1",
    }
    third = resources["PrivateSubnet3RouteTableAssociation"]
    assert third["Condition"] == resources["PrivateSubnet3"]["Condition"] == "HasPrivateSubnet3"


def test_s3_and_secrets_manager_endpoints(deployed: Deployment, ec2: Any) -> None:
    endpoints = {
        e["ServiceName"]: e
        for e in ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [deployed.network["VpcId"]]}]
        )["VpcEndpoints"]
    }
    s3 = endpoints[f"com.amazonaws.{REGION}.s3"]
    assert s3["VpcEndpointType"] == "Gateway"
    assert set(s3["RouteTableIds"]) == {
        deployed.network["PrivateRouteTable1Id"], deployed.network["PrivateRouteTable2Id"]
    }
    sm = endpoints[f"com.amazonaws.{REGION}.secretsmanager"]
    assert sm["VpcEndpointType"] == "Interface"
    assert sm["PrivateDnsEnabled"] is True
    assert set(sm["SubnetIds"]) == {
        deployed.network["PrivateSubnet1Id"], deployed.network["PrivateSubnet2Id"]
    }


def test_vpc_flow_logs_capture_all_traffic(deployed: Deployment, ec2: Any) -> None:
    (flow,) = ec2.describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [deployed.network["VpcId"]]}]
    )["FlowLogs"]
    assert flow["TrafficType"] == "ALL"
    assert flow["LogDestinationType"] == "cloud-watch-logs"


# ------------------------------------------------------------------ Redshift


def test_cluster_listens_on_5439_privately_and_encrypted(
    deployed: Deployment, cluster: dict[str, Any]
) -> None:
    assert cluster["Endpoint"]["Port"] == 5439
    assert cluster["PubliclyAccessible"] is False
    assert cluster["Encrypted"] is True
    assert deployed.redshift["KmsKeyArn"].endswith("/" + cluster["KmsKeyId"])
    assert cluster["EnhancedVpcRouting"] is True
    assert cluster["NodeType"].startswith("ra3.")
    assert cluster["NumberOfNodes"] == 2
    assert cluster["AllowVersionUpgrade"] is True
    assert cluster["AutomatedSnapshotRetentionPeriod"] >= 1
    assert cluster["DBName"] == "warehouse"
    assert cluster["MasterUsername"] not in ("awsuser", "admin", "root")


def test_cluster_key_rotates(cluster: dict[str, Any]) -> None:
    kms = boto3.client("kms", region_name=REGION)
    assert kms.get_key_rotation_status(KeyId=cluster["KmsKeyId"])["KeyRotationEnabled"]


def test_cluster_subnet_group_spans_both_private_subnets(
    deployed: Deployment, redshift: Any, cluster: dict[str, Any]
) -> None:
    (group,) = redshift.describe_cluster_subnet_groups(
        ClusterSubnetGroupName=cluster["ClusterSubnetGroupName"]
    )["ClusterSubnetGroups"]
    assert group["VpcId"] == deployed.network["VpcId"]
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == {
        deployed.network["PrivateSubnet1Id"], deployed.network["PrivateSubnet2Id"]
    }
    assert len({s["SubnetAvailabilityZone"]["Name"] for s in group["Subnets"]}) == 2


def test_cluster_admits_5439_only_from_build_and_dagster_groups(
    deployed: Deployment, ec2: Any, cluster: dict[str, Any]
) -> None:
    (attached,) = [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]]
    assert attached == deployed.redshift["SecurityGroupId"]
    (group,) = ec2.describe_security_groups(GroupIds=[attached])["SecurityGroups"]
    assert group["VpcId"] == deployed.network["VpcId"]
    rules = group["IpPermissions"]
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules} == {("tcp", 5439, 5439)}
    for rule in rules:
        assert rule["IpRanges"] == [] and rule["Ipv6Ranges"] == [] and rule["PrefixListIds"] == []
    sources = {pair["GroupId"] for r in rules for pair in r["UserIdGroupPairs"]}
    assert sources == {
        deployed.network["BuildSecurityGroupId"], deployed.network["DagsterSecurityGroupId"]
    }


def test_audit_log_groups_exist_with_retention() -> None:
    groups = boto3.client("logs", region_name=REGION).describe_log_groups(
        logGroupNamePrefix=f"/aws/redshift/cluster/{CLUSTER_ID}/"
    )["logGroups"]
    assert sorted(g["logGroupName"].rsplit("/", 1)[1] for g in groups) == [
        "connectionlog", "useractivitylog", "userlog"
    ]
    assert all(g["retentionInDays"] >= 365 for g in groups)


def test_outputs_give_a_password_free_url_and_the_managed_secret(
    deployed: Deployment, cluster: dict[str, Any]
) -> None:
    out = deployed.redshift
    assert out["Port"] == "5439"
    assert out["Endpoint"] == cluster["Endpoint"]["Address"]
    assert out["DbopsUrl"] == f"redshift://dbops_admin@{cluster['Endpoint']['Address']}:5439/warehouse"
    assert out["SecretArn"] == secret_arn_for(cluster["ClusterIdentifier"], "dbops_admin")


# ------------------------------------------------------------------ what moto ignores


@pytest.fixture(scope="module")
def redshift_template() -> dict[str, Any]:
    return load_template("redshift.yaml")


def test_master_password_is_managed_by_redshift(redshift_template: dict[str, Any]) -> None:
    props = redshift_template["Resources"]["Cluster"]["Properties"]
    assert props["ManageMasterPassword"] is True
    assert props["MasterPasswordSecretKmsKeyId"] == {"Ref": "WarehouseKey"}
    assert "MasterUserPassword" not in props
    assert not [p for p in redshift_template["Parameters"] if "password" in p.lower()]
    assert choose(redshift_template["Outputs"]["SecretArn"]["Value"], IsServerless=False) == {
        "Fn::GetAtt": ["Cluster", "MasterPasswordSecretArn"]
    }


def test_parameter_group_requires_ssl_and_logs_activity(redshift_template: dict[str, Any]) -> None:
    resources = redshift_template["Resources"]
    assert resources["Cluster"]["Properties"]["ClusterParameterGroupName"] == {"Ref": "ParameterGroup"}
    params = {
        p["ParameterName"]: p["ParameterValue"]
        for p in resources["ParameterGroup"]["Properties"]["Parameters"]
    }
    assert params["require_ssl"] == "true"
    assert params["enable_user_activity_logging"] == "true"


def test_audit_logging_goes_to_the_encrypted_log_groups(redshift_template: dict[str, Any]) -> None:
    resources = redshift_template["Resources"]
    cluster = resources["Cluster"]
    logging = cluster["Properties"]["LoggingProperties"]
    assert logging["LogDestinationType"] == "cloudwatch"
    exports = set(logging["LogExports"])
    assert exports == {"connectionlog", "userlog", "useractivitylog"}
    groups = {
        sub_text(choose(r["Properties"]["LogGroupName"], IsServerless=False)): name
        for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"
    }
    for log_type in exports:
        name = groups[f"/aws/redshift/cluster/${{ClusterIdentifier}}/{log_type}"]
        assert name in cluster["DependsOn"]  # exists before Redshift writes to it
        assert resources[name]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["WarehouseKey", "Arn"]}


def test_cluster_keeps_a_snapshot_and_its_key(redshift_template: dict[str, Any]) -> None:
    resources = redshift_template["Resources"]
    assert resources["Cluster"]["DeletionPolicy"] == "Snapshot"
    assert resources["Cluster"]["UpdateReplacePolicy"] == "Snapshot"
    assert resources["WarehouseKey"]["DeletionPolicy"] == "Retain"
    assert resources["WarehouseKey"]["Properties"]["EnableKeyRotation"] is True


def test_node_types_are_current_ra3(redshift_template: dict[str, Any]) -> None:
    node_type = redshift_template["Parameters"]["NodeType"]
    assert node_type["AllowedValues"] and all(v.startswith("ra3.") for v in node_type["AllowedValues"])
    assert node_type["Default"].startswith("ra3.")


@pytest.mark.parametrize("group", ["BuildSecurityGroup", "DagsterSecurityGroup"])
def test_client_groups_reach_databases_only_inside_the_vpc(group: str) -> None:
    """moto ignores inline egress rules: read them from the template."""
    egress = load_template("network.yaml")["Resources"][group]["Properties"]["SecurityGroupEgress"]
    anywhere = {r["FromPort"] for r in egress if r.get("CidrIp") == "0.0.0.0/0"}
    assert anywhere <= {80, 443}
    in_vpc = {r["FromPort"] for r in egress if r.get("CidrIp") == {"Ref": "VpcCidr"}}
    assert {5439, 5432} <= in_vpc
    assert all(r["FromPort"] == r["ToPort"] and r["IpProtocol"] == "tcp" for r in egress)


def test_warehouse_egress_is_https_only(redshift_template: dict[str, Any]) -> None:
    egress = redshift_template["Resources"]["WarehouseSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in egress] == [("tcp", 443, 443)]
