"""template.yaml, resolved for given parameters: what a team deploying run-tagger relies on."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from run_tagger.settings import Settings, load_settings

from tests.template.cfn import ROOT, TEMPLATE, Deployment

LAYER = ROOT / "layers" / "run_tagger"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"


def function(deployment: Deployment) -> dict[str, Any]:
    return deployment.properties("TagRunFunction")


def grants(deployment: Deployment) -> list[tuple[set[str], list[str]]]:
    """(actions, resources) of every statement of the function's role."""
    role = deployment.properties("TagRunFunctionRole")
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(statement["Effect"] == "Allow" for statement in statements)
    return [(set(_as_list(s["Action"])), _as_list(s["Resource"])) for s in statements]


def resources_granted(deployment: Deployment, action: str) -> set[str]:
    return {
        resource for actions, resources in grants(deployment) if action in actions for resource in resources
    }


def queue_policy(deployment: Deployment) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = deployment.properties("TagRunQueuePolicy")["PolicyDocument"][
        "Statement"
    ]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_given_the_sqs_event_source_when_a_batch_partly_fails_then_only_the_failed_items_are_retried() -> (
    None
):
    events = function(Deployment())["Events"]

    (source,) = events.values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == "{TagRunQueue.Arn}"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": "5"}
    assert source["Properties"]["MaximumBatchingWindowInSeconds"] == "1"


@pytest.mark.parametrize("timeout", Deployment().template["Parameters"]["FunctionTimeout"]["AllowedValues"])
def test_given_any_allowed_function_timeout_when_deployed_then_visibility_is_at_least_six_times_it(
    timeout: int,
) -> None:
    deployment = Deployment(FunctionTimeout=str(timeout))

    visibility = deployment.properties("TagRunQueue")["VisibilityTimeout"]

    assert function(deployment)["Timeout"] == str(timeout)
    assert 6 * timeout <= visibility <= 43200  # 43200: SQS's longest visibility timeout


def test_given_a_failing_message_when_it_exhausts_its_receives_then_it_waits_14_days_in_the_dlq() -> None:
    deployment = Deployment(MaxReceiveCount="7")

    queue, dead_letters = deployment.properties("TagRunQueue"), deployment.properties("DeadLetterQueue")

    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": "{DeadLetterQueue.Arn}", "maxReceiveCount": "7"}
    # The function knows the last delivery, so it dead-letters that one itself, with the reason.
    assert function(deployment)["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] == "7"
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A message's age in the DLQ counts from its first send: the source must let go first.
    assert queue["MessageRetentionPeriod"] < dead_letters["MessageRetentionPeriod"]


def test_given_both_queues_when_deployed_then_messages_are_encrypted_at_rest() -> None:
    for queue in Deployment().of_type("AWS::SQS::Queue").values():
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


def test_given_queue_type_fifo_when_deployed_then_both_queues_are_fifo_and_the_bus_rule_sets_a_group() -> (
    None
):
    standard, fifo = Deployment(), Deployment(QueueType="fifo")

    for name in ("TagRunQueue", "DeadLetterQueue"):
        assert "FifoQueue" not in standard.properties(name)
        assert fifo.properties(name)["FifoQueue"] is True
        assert fifo.properties(name)["ContentBasedDeduplication"] is True
        assert fifo.properties(name)["QueueName"].endswith(".fifo")
    # FIFO event sources take no batching window; EventBridge needs a message group for a FIFO target.
    assert "MaximumBatchingWindowInSeconds" not in function(fifo)["Events"]["TagRunRequests"]["Properties"]
    (target,) = fifo.properties("TagRunRequestedRule")["Targets"]
    assert target["SqsParameters"]["MessageGroupId"]


def test_given_parameters_aws_would_refuse_when_deployed_then_a_template_rule_stops_them_first() -> None:
    assert Deployment().broken_rules() == set()
    assert Deployment(QueueType="fifo", BatchSize="20").broken_rules() == {"FifoBatchesHoldAtMostTen"}
    assert Deployment(BatchSize="100", MaximumBatchingWindowInSeconds="0").broken_rules() == {
        "LargeBatchesNeedAWindow"
    }
    assert Deployment(EventBusName="default").broken_rules() == {"SharedBusIsNotCreated"}
    assert Deployment(CreateEventBus="false").broken_rules() == {"ExistingBusIsNamed"}


def test_given_the_function_when_deployed_then_it_runs_python313_on_arm64_with_active_tracing() -> None:
    properties = function(Deployment())

    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Tracing"] == "Active"
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/tag_run", "app.lambda_handler")
    assert properties["Layers"] == ["{RunTaggerLayer}"]
    assert (properties["Timeout"], properties["MemorySize"]) == ("60", "512")
    assert properties["LoggingConfig"] == {"LogGroup": "{TagRunFunctionLogGroup}"}
    assert isinstance(Deployment().properties("TagRunFunctionLogGroup")["RetentionInDays"], str)


def test_given_the_function_environment_when_loaded_then_it_sets_every_setting_validly() -> None:
    environment = function(Deployment())["Environment"]["Variables"]
    settings = {field.alias for field in Settings.model_fields.values() if field.alias}

    assert settings <= set(environment), f"not set by the template: {settings - set(environment)}"
    assert all(name.startswith("POWERTOOLS_") for name in set(environment) - settings)
    loaded = load_settings({name: str(value) for name, value in environment.items()})
    assert loaded.dead_letter_queue_url == "{DeadLetterQueue}"
    assert loaded.idempotency_table_name == "{IdempotencyTable}"
    assert loaded.event_bus_name == "{EventBus}"
    assert loaded.portkey_secret_id == "{PortkeyKeysSecret}"
    assert loaded.secrets_max_age_seconds == 300
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "RunTagger"
    assert environment["POWERTOOLS_SERVICE_NAME"] == "run-tagger"
    assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert environment["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


DEPLOYMENTS = {
    "defaults": {},
    "named secret, tenants, default bus": {
        "PortkeySecretId": "run-tagger/portkey",
        "PortkeyTenantSecretPrefix": "run-tagger/tenants/",
        "CreateEventBus": "false",
        "EventBusName": "default",
    },
    "secret by ARN": {
        "PortkeySecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:portkey-AbCdEf"
    },
}


@pytest.mark.parametrize("parameters", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_given_the_function_role_when_read_then_every_statement_names_a_resource_of_this_stack(
    parameters: dict[str, str],
) -> None:
    deployment = Deployment(**parameters)

    for actions, resources in grants(deployment):
        assert not any(action.endswith("*") for action in actions)
        for resource in resources:
            if resource == "*":  # X-Ray has no resource-level permissions
                assert all(action.startswith("xray:") for action in actions)
            else:
                is_stack_resource = re.fullmatch(r"\{\w+(\.Arn)?\}", resource) is not None
                assert is_stack_resource or resource.startswith("arn:aws:")
                assert ":123456789012:" in resource or is_stack_resource
    # The explicit role is the only one: SAM adds no managed policy (with their "*" resources).
    assert function(deployment)["Role"] == "{TagRunFunctionRole.Arn}"
    assert "Policies" not in function(deployment)
    assert "ManagedPolicyArns" not in deployment.properties("TagRunFunctionRole")


def test_given_each_capability_when_granted_then_it_is_on_the_one_resource_it_needs() -> None:
    deployment = Deployment()

    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert resources_granted(deployment, action) == {"{TagRunQueue.Arn}"}
    assert resources_granted(deployment, "sqs:SendMessage") == {"{DeadLetterQueue.Arn}"}
    assert resources_granted(deployment, "events:PutEvents") == {"{EventBus.Arn}"}
    assert resources_granted(deployment, "secretsmanager:GetSecretValue") == {"{PortkeyKeysSecret}"}
    assert resources_granted(deployment, "logs:PutLogEvents") == {"{TagRunFunctionLogGroup.Arn}"}
    for action in ("GetItem", "PutItem", "BatchWriteItem", "DeleteItem"):
        assert resources_granted(deployment, f"dynamodb:{action}") == {"{IdempotencyTable.Arn}"}
    assert resources_granted(deployment, "dynamodb:UpdateItem") == set()
    assert "cloudwatch:PutMetricData" not in {a for actions, _ in grants(deployment) for a in actions}


def test_given_an_existing_secret_and_a_tenant_prefix_when_granted_then_only_those_secrets_are_readable() -> (
    None
):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    named = Deployment(PortkeySecretId="run-tagger/portkey", PortkeyTenantSecretPrefix="run-tagger/tenants/")
    by_arn = Deployment(PortkeySecretId=f"{arn}portkey-AbCdEf")

    assert resources_granted(named, "secretsmanager:GetSecretValue") == {
        f"{arn}run-tagger/portkey-??????",
        f"{arn}run-tagger/portkey",  # no secret has this ARN: a mistyped name is "not found", not "denied"
        f"{arn}run-tagger/tenants/*",
    }
    assert resources_granted(by_arn, "secretsmanager:GetSecretValue") == {
        f"{arn}portkey-AbCdEf",
        f"{arn}portkey-AbCdEf-??????",
    }
    assert not named.exists("PortkeyKeysSecret")
    assert function(named)["Environment"]["Variables"]["PORTKEY_SECRET_ID"] == "run-tagger/portkey"


def test_given_the_idempotency_table_when_deployed_then_records_expire_encrypted_and_backed_up() -> None:
    table = Deployment().properties("IdempotencyTable")

    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_given_producers_on_eventbridge_when_they_send_tag_run_requested_then_a_rule_queues_them() -> None:
    deployment, without = Deployment(), Deployment(EnableEventBridgeRequests="false")

    rule = deployment.properties("TagRunRequestedRule")
    (allow,) = [s for s in queue_policy(deployment) if s.get("Sid") == "AllowTagRunRequestedRule"]

    assert rule["EventPattern"] == {"detail-type": ["Tag Run Requested"]}
    assert [target["Arn"] for target in rule["Targets"]] == ["{TagRunQueue.Arn}"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert (allow["Action"], allow["Resource"]) == ("sqs:SendMessage", "{TagRunQueue.Arn}")
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": "{TagRunRequestedRule.Arn}"}}
    assert not without.exists("TagRunRequestedRule")
    assert all(s["Principal"] != {"Service": "events.amazonaws.com"} for s in queue_policy(without))


def test_given_run_events_when_published_then_the_bus_archives_them_and_the_example_consumer_logs_them() -> (
    None
):
    deployment = Deployment()

    archive = deployment.properties("RunEventsArchive")
    consumer = deployment.properties("RunEventsToLogRule")

    assert archive["SourceArn"] == "{EventBus.Arn}"
    assert archive["EventPattern"] == {"source": ["run-tagger"]}
    assert consumer["EventPattern"]["detail-type"] == ["Run Tagged", "Run Tag Failed"]
    assert consumer["EventBusName"] == "{EventBus}"
    assert deployment.properties("RunEventLogGroup")["LogGroupName"].startswith("/aws/events/")


def test_given_the_alarms_when_something_goes_wrong_then_each_watches_its_metric_and_notifies() -> None:
    deployment = Deployment()

    alarms = {
        (a["Namespace"], a["MetricName"], tuple((d["Name"], d["Value"]) for d in a["Dimensions"])): a
        for a in deployment.of_type("AWS::CloudWatch::Alarm").values()
    }

    assert set(alarms) == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "{DeadLetterQueue.QueueName}"),)),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", (("QueueName", "{TagRunQueue.QueueName}"),)),
        ("AWS/Lambda", "Errors", (("FunctionName", "{TagRunFunction}"),)),
        ("AWS/Lambda", "Throttles", (("FunctionName", "{TagRunFunction}"),)),
    }
    dlq_alarm = alarms[
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "{DeadLetterQueue.QueueName}"),)
    ]
    assert (dlq_alarm["ComparisonOperator"], dlq_alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert all(alarm["AlarmActions"] == ["{AlarmTopic}"] for alarm in alarms.values())
    assert not deployment.exists("AlarmEmailSubscription")
    subscription = Deployment(AlarmEmail="oncall@example.com").properties("AlarmEmailSubscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "oncall@example.com")


def test_given_the_dashboard_when_opened_then_it_charts_the_queues_and_the_metrics_the_function_emits() -> (
    None
):
    deployment = Deployment()
    environment = function(deployment)["Environment"]["Variables"]
    emitted = (LAYER / "run_tagger" / "observability.py").read_text()

    body = json.loads(deployment.properties("Dashboard")["DashboardBody"])
    metrics = {tuple(m[:4]) for widget in body["widgets"] for m in widget["properties"]["metrics"]}

    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "{TagRunQueue.QueueName}",
    ) in metrics
    assert (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "{DeadLetterQueue.QueueName}",
    ) in metrics
    powertools = {
        name for namespace, name, _, _ in metrics if namespace == environment["POWERTOOLS_METRICS_NAMESPACE"]
    }
    assert {"RunsTagged", "RequestsFailed", "RequestsRetried", "PortkeyLatency"} <= powertools
    for namespace, name, dimension, value in metrics:
        if namespace == "RunTagger":  # Powertools' EMF dimension is the service name
            assert (dimension, value) == ("service", environment["POWERTOOLS_SERVICE_NAME"])
            assert f'"{name}"' in emitted, f"the dashboard charts {name}, which the function never emits"


def test_given_the_stack_when_deployed_then_it_outputs_what_producers_consumers_and_operators_need() -> None:
    outputs = Deployment().template["Outputs"]

    assert {
        "TagRunQueueUrl",
        "TagRunQueueArn",
        "DeadLetterQueueUrl",
        "EventBusName",
        "EventSource",
        "TagRunFunctionName",
        "IdempotencyTableName",
        "DashboardUrl",
    } <= set(outputs)


@pytest.mark.skipif(
    not CHECKOV.exists(), reason=f"checkov is not installed at {CHECKOV} (make test installs it)"
)
def test_given_checkov_when_it_scans_the_template_then_nothing_fails_and_every_skip_says_why() -> None:
    scan = subprocess.run(  # noqa: S603 - a fixed command
        [str(CHECKOV), "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    report = json.loads(scan.stdout)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert all(check["check_result"].get("suppress_comment", "").strip() for check in skipped)
