"""Builds the pipeline from settings and the clients the entry point created (kept across invocations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from run_tagger.batching import EventBatcher, Lanes
from run_tagger.dead_letter import DeadLetterQueue
from run_tagger.idempotency import Deduplicator
from run_tagger.keys import KeyStore
from run_tagger.pipeline import OutcomeLog, PipelineDeps, TagRunPipeline
from run_tagger.portkey import PortkeyClient, new_session
from run_tagger.processor import ConcurrentBatchProcessor
from run_tagger.publisher import EventBuilder, EventPublisher
from run_tagger.settings import Settings

if TYPE_CHECKING:
    import requests
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


LANES_PER_PORTKEY_SLOT = 3


@dataclass(frozen=True, slots=True)
class AwsClients:
    events: EventBridgeClient
    sqs: SQSClient
    secrets: SecretsManagerClient
    dynamodb: DynamoDBClient | None = None


@dataclass(frozen=True, slots=True)
class TagRunService:
    """What one warm Lambda environment keeps: the settings, the pipeline and its clients."""

    settings: Settings
    pipeline: TagRunPipeline
    portkey: PortkeyClient
    lanes: Lanes
    dedup: Deduplicator | None = None

    def new_processor(self) -> ConcurrentBatchProcessor:
        return ConcurrentBatchProcessor(
            max_concurrency=lane_workers(self.settings),
            lane_scope=self.lanes.lane,
            held_back=self.pipeline.handle_held_back,
        )

    def start_invocation(self, context: LambdaContext) -> None:
        """Per-invocation set-up: the rate limit opens again; idempotency learns the deadline."""
        self.portkey.start_invocation()
        if self.dedup is not None:
            self.dedup.register_lambda_context(context)


def lane_workers(settings: Settings) -> int:
    """Threads for the lanes of a batch: more than MAX_CONCURRENCY, so that lanes waiting for their
    event to be published (or for DynamoDB) leave Portkey's slots to others; the client holds Portkey
    itself to MAX_CONCURRENCY requests at once. One means serial, all the way."""
    return 1 if settings.max_concurrency == 1 else LANES_PER_PORTKEY_SLOT * settings.max_concurrency


def build_service(
    settings: Settings, clients: AwsClients, log: OutcomeLog, *, session: requests.Session | None = None
) -> TagRunService:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    session = session or new_session(settings.max_concurrency, settings.portkey_base_url)
    keys = KeyStore(
        SecretsProvider(boto3_client=clients.secrets),
        default_secret_id=settings.portkey_secret_id,
        tenant_secret_prefix=settings.portkey_tenant_secret_prefix,
        max_age_seconds=settings.secrets_max_age_seconds,
    )
    portkey = PortkeyClient(
        session,
        base_url=settings.portkey_base_url,
        timeout_seconds=settings.portkey_timeout_seconds,
        max_attempts=settings.portkey_max_attempts,
        max_in_flight=settings.max_concurrency,
    )
    # Events and completed de-duplication records are gathered across the lanes of a batch.
    lanes = Lanes()
    dedup = None
    if settings.idempotency_table_name:
        if clients.dynamodb is None:
            raise ValueError("IDEMPOTENCY_TABLE_NAME is set but no DynamoDB client was given")
        dedup = Deduplicator(settings.idempotency_table_name, clients.dynamodb, lanes)
    events = EventBatcher(
        EventPublisher(clients.events, bus_name=settings.event_bus_name, source=settings.event_source),
        lanes,
    )
    deps = PipelineDeps(
        keys=keys,
        portkey=portkey,
        builder=EventBuilder(source=settings.event_source, max_bytes=settings.event_max_bytes),
        events=events,
        dead_letters=DeadLetterQueue(clients.sqs, settings.dead_letter_queue_url)
        if settings.dead_letter_queue_url
        else None,
        log=log,
        dedup=dedup,
    )
    return TagRunService(
        settings=settings,
        pipeline=TagRunPipeline(deps, max_receive_count=settings.max_receive_count),
        portkey=portkey,
        lanes=lanes,
        dedup=dedup,
    )
