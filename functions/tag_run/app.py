"""Lambda entry point of run-tagger: wiring only (Powertools, the batch processor, the pipeline)."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from run_tagger.observability import PowertoolsOutcomeLog, quiet_libraries

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from run_tagger.service import TagRunService

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "run-tagger")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "RunTagger")
tracer = Tracer()
quiet_libraries()
# With POWERTOOLS_METRICS_DISABLED (the local stack) there is never anything to flush: not a problem.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

outcomes = PowertoolsOutcomeLog(logger, metrics)
_service: TagRunService | None = None


def service() -> TagRunService:
    """Built at the first event, so configuration is read then, and kept while the environment is warm."""
    global _service  # noqa: PLW0603 - one per Lambda environment, reused across invocations
    if _service is None:
        import boto3
        from botocore.config import Config
        from run_tagger.service import AwsClients, build_service, lane_workers
        from run_tagger.settings import load_settings

        settings = load_settings()
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=3,
            read_timeout=10,
            max_pool_connections=lane_workers(settings) + 2,
        )
        clients = AwsClients(
            events=boto3.client("events", config=config),
            sqs=boto3.client("sqs", config=config),
            secrets=boto3.client("secretsmanager", config=config),
            dynamodb=boto3.client("dynamodb", config=config) if settings.idempotency_table_name else None,
        )
        _service = build_service(settings, clients, outcomes)
    return _service


def reset() -> None:
    """Forget the built service, so the next event reads the environment again (tests, the local stack)."""
    global _service  # noqa: PLW0603
    _service = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    current = service()
    current.start_invocation(context)
    try:
        return process_partial_response(
            event=event,
            record_handler=current.pipeline.handle_record,
            processor=current.new_processor(),
            context=context,
        )
    finally:
        outcomes.emit_counts()
