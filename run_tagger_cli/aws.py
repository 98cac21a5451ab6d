"""The AWS options of the commands that call AWS, as the AWS CLI takes them, and stack-output resolution."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3

STACK_OUTPUTS = {
    "queue_url": "TagRunQueueUrl",
    "dlq_url": "DeadLetterQueueUrl",
    "bus_name": "EventBusName",
}


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 1."""


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS options (as the AWS CLI takes them)")
    group.add_argument("--stack", metavar="NAME", help="read queue, DLQ and bus from this stack's outputs")
    group.add_argument("--region", help="AWS region (default: from the profile or AWS_REGION)")
    group.add_argument("--profile", help="named profile from ~/.aws/config")
    group.add_argument("--endpoint-url", metavar="URL", help="send AWS calls here (e.g. the embedded stack)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output (and errors, past the command line's own checks)",
    )


@dataclass
class Aws:
    """A boto3 session made from the common options, and the stack's outputs when --stack is given."""

    session: boto3.Session
    endpoint_url: str | None
    stack: str | None
    _outputs: dict[str, str] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Aws:
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.Session(profile_name=args.profile, region_name=args.region)
        except BotoCoreError as exc:
            raise CliError(str(exc)) from None
        return cls(session, args.endpoint_url, args.stack)

    def client(self, service: str) -> Any:
        from botocore.exceptions import BotoCoreError

        try:
            return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        except BotoCoreError as exc:
            raise CliError(f"cannot make a {service} client: {exc}") from None

    def resolve(self, given: str | None, name: str, option: str) -> str:
        """An explicit option wins; else the stack's output; else a clear error naming both."""
        if given:
            return given
        if not self.stack:
            raise CliError(f"give {option} or --stack")
        outputs = self._stack_outputs()
        key = STACK_OUTPUTS[name]
        if key not in outputs:
            raise CliError(f"stack {self.stack!r} has no output {key}")
        return outputs[key]

    def _stack_outputs(self) -> dict[str, str]:
        if self._outputs is None:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
            except (BotoCoreError, ClientError) as exc:
                raise CliError(f"cannot read stack {self.stack!r}: {exc}") from None
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return self._outputs
