"""The AWS emulator (moto's server on 127.0.0.1) and the resources template.yaml creates, built in it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, overload

import boto3
import urllib3
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import InputTransformerTypeDef, TargetTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; fixed dummies keep a developer's real ones out of every request.
DUMMY_CREDENTIAL = "testing"
DEFAULT_KEYS = {"api_key": "pk-local-default", "virtual_key": "vk-local-default"}
TENANT_KEYS = {"api_key": "pk-local-acme", "virtual_key": "vk-local-acme"}

Service = Literal["sqs", "events", "sns", "secretsmanager", "dynamodb"]


def aws_environment(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Variables that point every boto3 client of a process at the emulator.

    Remove AWS_PROFILE from that process too: a named profile outranks these credentials.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
        "AWS_SESSION_TOKEN": DUMMY_CREDENTIAL,
    }


class EmulatedAws:
    """moto's server in a thread of this process, bound to loopback only (port 0: the OS picks one)."""

    def __init__(self, *, region: str = DEFAULT_REGION, port: int = 0, quiet: bool = True) -> None:
        self.region = region
        self._port = port
        self._quiet = quiet
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None
        self._session: boto3.Session | None = None

    def start(self) -> Self:
        if self._quiet:
            # werkzeug logs one line per request at INFO; the demo's output would drown in them.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._port, verbose=not self._quiet)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._endpoint_url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._endpoint_url

    def environment(self) -> dict[str, str]:
        return aws_environment(self.endpoint_url, self.region)

    def reset(self) -> None:
        """Forget every resource. moto's state is per process, so this also clears other users of it."""
        response = urllib3.request("POST", f"{self.endpoint_url}/moto-api/reset")
        if response.status != 200:
            raise RuntimeError(f"moto reset answered {response.status}")

    def session(self) -> boto3.Session:
        """One session for all clients: it loads each service model once (a new one costs ~50 ms)."""
        if self._session is None:
            self._session = boto3.Session(
                aws_access_key_id=DUMMY_CREDENTIAL,
                aws_secret_access_key=DUMMY_CREDENTIAL,
                aws_session_token=DUMMY_CREDENTIAL,
                region_name=self.region,
            )
        return self._session

    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    def client(self, service: Service) -> Any:
        session: Any = self.session()  # boto3-stubs only types a literal service name
        return session.client(service, endpoint_url=self.endpoint_url)


@dataclass(frozen=True)
class StackNames:
    """Names of the local stack's resources."""

    queue: str = "run-tagger-requests"
    dead_letter_queue: str = "run-tagger-requests-dlq"
    event_bus: str = "run-tagger-local"
    inspection_queue: str = "run-tagger-published"
    topic: str = "run-tagger-requests"
    secret: str = "run-tagger/portkey"  # noqa: S105 - a name, not a value
    tenant_secret_prefix: str = "run-tagger/tenants/"  # noqa: S105 - a name, not a value
    tenant: str = "acme"
    idempotency_table: str = "run-tagger-idempotency"
    event_source: str = "run-tagger"

    @classmethod
    def suffixed(cls, suffix: str | None = None) -> StackNames:
        """Names no other stack uses, so several stacks (and tests) can share one emulator."""
        tag = suffix or uuid.uuid4().hex[:8]
        base = cls()
        per_stack = ("queue", "dead_letter_queue", "event_bus", "inspection_queue", "topic", "secret")
        renamed = {name: f"{getattr(base, name)}-{tag}" for name in (*per_stack, "idempotency_table")}
        return replace(base, tenant_secret_prefix=f"run-tagger-{tag}/tenants/", **renamed)


@dataclass(frozen=True)
class StackResources:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    bus_name: str
    inspection_queue_url: str
    topic_arn: str
    secret_id: str
    tenant_secret_prefix: str
    idempotency_table_name: str
    event_source: str = "run-tagger"
    max_receive_count: int = 3

    def function_environment(self) -> dict[str, str]:
        """The function's configuration (DESIGN §1.5) as the template would set it for this stack."""
        return {
            "PORTKEY_SECRET_ID": self.secret_id,
            "PORTKEY_TENANT_SECRET_PREFIX": self.tenant_secret_prefix,
            "EVENT_BUS_NAME": self.bus_name,
            "EVENT_SOURCE": self.event_source,
            "DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "IDEMPOTENCY_TABLE_NAME": self.idempotency_table_name,
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
        }


# moto's default delivery to an SQS target leaves "account" out of the event (its built-in template
# omits it); EventBridge delivers the whole event. This transformer rebuilds the full envelope so the
# body matches AWS's. moto substitutes text without escaping, so "detail" comes last: text inside it
# is then never mistaken for a placeholder. template.yaml needs none of this.
_FULL_EVENT_TRANSFORMER: InputTransformerTypeDef = {
    "InputPathsMap": {
        name: f"$.{name}"
        for name in ("id", "detail-type", "source", "account", "time", "region", "resources", "detail")
    },
    "InputTemplate": (
        '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>",'
        ' "account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>,'
        ' "detail": <detail>}'
    ),
}
_FIFO_GROUP = "run-tagger"  # an EventBridge target gives a FIFO queue one fixed group id


def create_stack(
    aws: EmulatedAws,
    *,
    fifo: bool = False,
    names: StackNames | None = None,
    keys: Mapping[str, str] | None = None,
    tenant_keys: Mapping[str, str] | None = None,
    visibility_timeout: int = 30,
    max_receive_count: int = 3,
) -> StackResources:
    """Create what the SAM template creates, plus an inspection queue that receives every published event."""
    names = names or StackNames()
    sqs, events, sns = aws.client("sqs"), aws.client("events"), aws.client("sns")
    suffix = ".fifo" if fifo else ""  # AWS requires it on FIFO queue and topic names
    fifo_queue: dict[QueueAttributeNameType, str] = (
        {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    )

    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue + suffix,
        Attributes={**fifo_queue, "MessageRetentionPeriod": "1209600"},  # 14 days, to inspect at leisure
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    queue_attributes: dict[QueueAttributeNameType, str] = {
        **fifo_queue,
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps(redrive),
    }
    queue_url = sqs.create_queue(QueueName=names.queue + suffix, Attributes=queue_attributes)["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    inspection_url = sqs.create_queue(QueueName=names.inspection_queue)["QueueUrl"]
    inspection_arn = _queue_arn(sqs, inspection_url)

    events.create_event_bus(Name=names.event_bus)
    published = {"source": [names.event_source], "detail-type": ["Run Tagged", "Run Tag Failed"]}
    published_rule = _route(events, names.event_bus, "published", published, inspection_arn, group=None)
    requested = {"detail-type": ["Tag Run Requested"]}
    group = _FIFO_GROUP if fifo else None
    requests_rule = _route(events, names.event_bus, "requests", requested, queue_arn, group=group)

    topic_attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    topic_arn = sns.create_topic(Name=names.topic + suffix, Attributes=topic_attributes)["TopicArn"]
    # No RawMessageDelivery attribute at all: moto takes any value of it, even "false", as "raw".
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    # moto does not enforce queue policies; they are set so the local stack reads like the template.
    senders = {"events.amazonaws.com": requests_rule, "sns.amazonaws.com": topic_arn}
    _allow_senders(sqs, queue_url, queue_arn, senders)
    _allow_senders(sqs, inspection_url, inspection_arn, {"events.amazonaws.com": published_rule})

    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name=names.secret, SecretString=json.dumps(dict(keys or DEFAULT_KEYS)))
    secrets.create_secret(
        Name=names.tenant_secret_prefix + names.tenant,
        SecretString=json.dumps(dict(tenant_keys or TENANT_KEYS)),
    )
    _create_idempotency_table(aws.client("dynamodb"), names.idempotency_table)

    return StackResources(
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        bus_name=names.event_bus,
        inspection_queue_url=inspection_url,
        topic_arn=topic_arn,
        secret_id=names.secret,
        tenant_secret_prefix=names.tenant_secret_prefix,
        idempotency_table_name=names.idempotency_table,
        event_source=names.event_source,
        max_receive_count=max_receive_count,
    )


def put_keys(aws: EmulatedAws, secret_id: str, keys: Mapping[str, Any]) -> None:
    """Rotate a keys secret: its new value is current from now on."""
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(dict(keys)))


def drain(aws: EmulatedAws, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message visible now, with its system and message attributes.

    On a queue with a redrive policy, a message already received maxReceiveCount times is moved
    to its DLQ by this receive, as SQS does, and is not returned.
    """
    sqs = aws.client("sqs")
    drained: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return drained
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        drained.extend({**m} for m in messages)


def read_published_events(aws: EmulatedAws, inspection_queue_url: str) -> list[dict[str, Any]]:
    """The EventBridge events published since the last read, parsed, oldest first."""
    events: list[dict[str, Any]] = [json.loads(m["Body"]) for m in drain(aws, inspection_queue_url)]
    return events


def _queue_arn(sqs: SQSClient, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _route(
    events: EventBridgeClient, bus: str, name: str, pattern: object, queue_arn: str, *, group: str | None
) -> str:
    """A rule on `bus` sending the full matching events to a queue; returns the rule's ARN."""
    rule_name = f"{bus}-{name}"
    rule_arn = events.put_rule(Name=rule_name, EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
    target: TargetTypeDef = {"Id": name, "Arn": queue_arn, "InputTransformer": _FULL_EVENT_TRANSFORMER}
    if group is not None:
        target["SqsParameters"] = {"MessageGroupId": group}
    events.put_targets(Rule=rule_name, EventBusName=bus, Targets=[target])
    return rule_arn


def _allow_senders(sqs: SQSClient, queue_url: str, queue_arn: str, senders: Mapping[str, str]) -> None:
    statements = [
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
        }
        for service, source_arn in senders.items()
    ]
    policy = {"Version": "2012-10-17", "Statement": statements}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


def _create_idempotency_table(dynamodb: DynamoDBClient, name: str) -> None:
    # Powertools' DynamoDBPersistenceLayer defaults: partition key "id" (string), TTL on "expiration".
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
