"""template.yaml: producers publishing through SNS, and keys secrets under a customer managed KMS key."""

from __future__ import annotations

from tests.template.cfn import Deployment
from tests.template.test_template import queue_policy, resources_granted

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_given_producers_on_sns_when_they_publish_to_the_topic_then_the_queue_receives_the_envelope() -> None:
    deployment = Deployment()

    subscription = deployment.properties("RequestTopicSubscription")
    (allow,) = [s for s in queue_policy(deployment) if s["Principal"] == {"Service": "sns.amazonaws.com"}]

    assert (subscription["TopicArn"], subscription["Protocol"]) == ("{RequestTopic}", "sqs")
    assert subscription["Endpoint"] == "{TagRunQueue.Arn}"
    assert "RawMessageDelivery" not in subscription  # the request is the envelope's Message (DESIGN 1.1)
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == (
        "Allow",
        "sqs:SendMessage",
        "{TagRunQueue.Arn}",
    )
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": "{RequestTopic}"}}
    assert deployment.template["Outputs"]["RequestTopicArn"]["Value"] == {"Ref": "RequestTopic"}


def test_given_a_fifo_queue_when_deployed_then_the_request_topic_is_fifo_too() -> None:
    topic = Deployment(QueueType="fifo").properties("RequestTopic")

    assert topic["FifoTopic"] is True
    assert topic["TopicName"].endswith(".fifo")


def test_given_sns_requests_disabled_when_deployed_then_no_topic_and_no_sns_sender_is_allowed() -> None:
    deployment = Deployment(EnableSnsRequests="false")

    assert not deployment.exists("RequestTopic")
    assert not deployment.exists("RequestTopicSubscription")
    assert all(s["Principal"] != {"Service": "sns.amazonaws.com"} for s in queue_policy(deployment))


def test_given_keys_under_a_customer_managed_key_when_granted_then_it_is_decrypted_via_secrets_manager() -> (
    None
):
    deployment = Deployment(PortkeySecretKmsKeyArn=KEY_ARN)
    role = deployment.properties("TagRunFunctionRole")
    (decrypt,) = [
        s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] if s["Action"] == "kms:Decrypt"
    ]

    assert decrypt["Resource"] == KEY_ARN
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }


def test_given_keys_under_the_aws_managed_key_when_granted_then_no_kms_permission_is_added() -> None:
    assert resources_granted(Deployment(), "kms:Decrypt") == set()


def test_given_two_stacks_when_deployed_then_their_layers_have_names_of_their_own() -> None:
    written = Deployment().template["Resources"]["RunTaggerLayer"]["Properties"]["LayerName"]

    assert written == {"Fn::Sub": "${AWS::StackName}-run-tagger"}  # the stack's name, whatever it is
    assert Deployment().properties("RunTaggerLayer")["LayerName"] == "run-tagger-run-tagger"
