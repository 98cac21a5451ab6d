"""Compressed answers over a real socket, split as a network may split them."""

from __future__ import annotations

import json
import time
import zlib

from run_tagger.portkey import PortkeyClient, new_session

from tests.integration.scripted_server import head, scripted_server
from tests.support import a_run

HEADERS = {"x-portkey-api-key": "pk-test", "x-portkey-virtual-key": "vk-test"}


def test_raw_deflate_whose_first_read_is_one_byte_is_read_whole() -> None:
    # Given a run sent as raw deflate (no zlib wrapper), its first byte alone, the rest 0.1 s later
    run = a_run(id="run_a", thread_id="thread_a", metadata={"k": "v"})
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = compressor.compress(json.dumps(run).encode()) + compressor.flush()
    first = head(f"Content-Length: {len(body)}", "Content-Encoding: deflate") + body[:1]
    with scripted_server([(0.0, first), (0.1, body[1:])]) as base_url:
        client = PortkeyClient(new_session(1, base_url), base_url=base_url, timeout_seconds=5, max_attempts=1)
        # When the run is modified
        answer = client.modify_run(
            "thread_a", "run_a", {"k": "v"}, headers=HEADERS, deadline=time.monotonic() + 30
        )
    # Then the format was told by the first two bytes, not the first one
    assert answer.to_json_dict() == run
