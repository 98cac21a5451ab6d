"""`make run`: the whole pipeline on the embedded stack, with the samples from events/.

It starts moto's server and the Portkey stand-in on loopback, creates the stack's resources, sends
every sample request (directly, through the EventBridge rule and through SNS), lets Lambda's event
source mapping feed the real handler until the queue is drained, and prints what was published and
what was dead-lettered. It exits 0 once every message is accounted for.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from local.runs import make_run
from local.stack import ROOT, EmbeddedStack, load_function

SAMPLES = ROOT / "events" / "requests"
# The sample whose run the backend no longer serves, to show a 404 (`run_not_found`).
MISSING_RUN_SAMPLE = "tag-run-missing-run.json"


def _samples() -> list[tuple[str, str]]:
    return [(path.name, path.read_text(encoding="utf-8")) for path in sorted(SAMPLES.glob("*.json"))]


def _existing_runs(samples: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Runs for every sample that names one, except the one meant to be missing."""
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for name, body in samples:
        request = json.loads(body)
        ids = (request.get("thread_id"), request.get("run_id"))
        if name != MISSING_RUN_SAMPLE and all(isinstance(part, str) for part in ids):
            runs[(ids[0], ids[1])] = make_run(ids[0], ids[1])
    return list(runs.values())


def _describe_event(event: dict[str, Any]) -> str:
    detail = event["detail"]
    if event["detail-type"] == "Run Tagged":
        run, request = detail["run"], detail["request"]
        tags = ", ".join(f"{k}={v}" for k, v in run["metadata"].items())
        extra = f"  tenant={request['tenant']}" if request["tenant"] else ""
        cut = f"  truncated={detail['truncated']}" if detail["truncated"] else ""
        return (
            f"  Run Tagged      {run['thread_id']}/{run['id']}  status={run['status']}  [{tags}]{extra}{cut}"
        )
    error = detail["error"]
    status = f" (HTTP {error['status']})" if error["status"] else ""
    return f"  Run Tag Failed  {error['code']}{status}: {error['message']}"


def _describe_dead_letter(message: dict[str, Any]) -> str:
    # A body too large to carry its reason goes bare; the event has the reason then.
    attributes = {
        name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
    }
    body = _one_line(message["Body"])
    reason = f"{attributes.get('error_code', '(no reason attached)')}: {attributes.get('error_message', '')}"
    return f"  {reason}\n      body: {body}"


def _one_line(body: str, width: int = 110) -> str:
    try:
        body = json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        body = " ".join(body.split())
    return body if len(body) <= width else body[: width - 3] + "..."


def run_demo(*, verbose: bool = False) -> int:
    samples = _samples()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "WARNING")
    started = time.monotonic()
    with EmbeddedStack.running(runs=_existing_runs(samples)) as stack:
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(stack.function_environment())
        app = load_function()
        app.reset()
        print(f"AWS emulator     {stack.aws.endpoint_url}")
        print(f"Portkey stand-in {stack.portkey.base_url}")
        print(f"queue            {stack.resources.queue_url}\n")

        print(f"Sending {len(samples)} sample requests from events/requests/:")
        for name, body in samples:
            stack.send(body)
            print(f"  SQS          {name}")
        routed = json.loads((SAMPLES / "tag-run.json").read_text(encoding="utf-8"))
        stack.send_via_eventbridge({**routed, "request_id": "demo-via-eventbridge"})
        print("  EventBridge  tag-run.json as a 'Tag Run Requested' event")
        stack.send_via_sns({**routed, "request_id": "demo-via-sns"})
        print("  SNS          tag-run.json as a notification")
        sent = len(samples) + 2

        print("\nLambda's event source mapping feeds the function (failures are logged as one line):")
        outcomes = stack.poller(app.lambda_handler).run_until_drained(max_batches=50)
        events = stack.published()
        dead = stack.dead_letters()
        depth = stack.queue_depth()

    tagged = [e for e in events if e["detail-type"] == "Run Tagged"]
    failed = [e for e in events if e["detail-type"] == "Run Tag Failed"]
    print(f"\nPublished to EventBridge ({len(events)}):")
    print("\n".join(_describe_event(event) for event in events))
    print(f"\nDead-letter queue ({len(dead)}):")
    print("\n".join(_describe_dead_letter(message) for message in dead) or "  (empty)")
    errors = [o.error for o in outcomes if o.error]
    accounted = len(tagged) + len(dead)
    print(
        f"\n{sent} sent, {len(tagged)} tagged, {len(failed)} failed ({len(dead)} in the DLQ), "
        f"{depth} left on the queue; {sum(o.received for o in outcomes)} deliveries in "
        f"{len(outcomes)} batches, {time.monotonic() - started:.1f}s"
    )
    if errors or depth or accounted != sent or len(failed) != len(dead):
        print("NOT every message is accounted for" + (f": {errors}" if errors else ""))
        return 1
    print("Every message is accounted for: published, or in the DLQ with its reason.")
    return 0
