"""What a failure keeps of Portkey's answer: its own message, whichever of its shapes it came in, cut to
a readable length and with no key in it."""

from __future__ import annotations

import json

from run_tagger.portkey_answers import error_message

SECRET = "pk-Sup3rSecretPortkeyKey"


def test_openais_error_shape_gives_its_message() -> None:
    answer = json.dumps(
        {"error": {"message": "No run found with id 'run_x'.", "type": "invalid_request_error"}}
    )

    assert error_message(answer.encode(), [SECRET]) == "No run found with id 'run_x'."


def test_portkeys_gateway_shape_gives_its_message() -> None:
    answer = json.dumps({"status": "failure", "message": "Invalid config passed"})

    assert error_message(answer.encode(), [SECRET]) == "Invalid config passed"


def test_a_long_api_message_is_cut_to_a_thousand_characters() -> None:
    answer = json.dumps({"error": {"message": "m" * 5_000}})

    assert error_message(answer.encode(), [SECRET]) == "m" * 1_000


def test_a_page_that_is_not_an_api_error_keeps_only_its_first_300_characters() -> None:
    page = "<html><body>" + "x" * 5_000 + "</body></html>"

    assert error_message(page.encode(), [SECRET]) == page[:300]


def test_a_key_quoted_in_the_message_is_redacted_before_it_is_cut() -> None:
    # Given a message that quotes the key across the point where it is cut
    answer = json.dumps({"error": {"message": "m" * 990 + f"bad key {SECRET}"}})
    # When the message is kept
    message = error_message(answer.encode(), [SECRET])
    # Then no piece of the key is left
    assert "Sup3r" not in message
    assert message == "m" * 990 + "bad key [r"
