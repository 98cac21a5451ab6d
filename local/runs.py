"""Assistants v2 run objects for the Portkey stand-in: a realistic factory and a thread-safe store.

A run made for an id is the same on every call and on every machine (the random generator is seeded
from the id), so a failing test or a benchmark can be replayed exactly.
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

type Run = dict[str, Any]

# The ids go into a URL path, so only what run-tagger itself lets through is a well-formed id.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

# 2025-01-01T00:00:00Z: runs look like they were made while the Assistants API was still served.
_EPOCH = 1_735_689_600
_ALPHABET = string.ascii_letters + string.digits

_INSTRUCTIONS = (
    "You are a support assistant for an online shop. Answer briefly and cite the order number.",
    "You are a data analyst. Use the code interpreter for every calculation and show the table.",
    "Summarise the attached documents for an engineering audience; quote file names.",
)

_ORDER_STATUS_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up the delivery status of an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "The order number, e.g. A-1042."}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
_CODE_INTERPRETER_TOOL: dict[str, Any] = {"type": "code_interpreter"}
_FILE_SEARCH_TOOL: dict[str, Any] = {
    "type": "file_search",
    "file_search": {
        "max_num_results": 20,
        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
    },
}

_TOOLSETS: tuple[list[dict[str, Any]], ...] = (
    [],
    [_ORDER_STATUS_TOOL],
    [_ORDER_STATUS_TOOL, _CODE_INTERPRETER_TOOL],
    [_CODE_INTERPRETER_TOOL],
    [_FILE_SEARCH_TOOL],
    [_ORDER_STATUS_TOOL, _FILE_SEARCH_TOOL, _CODE_INTERPRETER_TOOL],
)

# Mostly completed, as most runs a producer tags are finished; the rest exercise the nullable fields.
_STATUSES = ("completed",) * 14 + ("requires_action", "failed", "incomplete", "cancelled", "in_progress")


def is_well_formed_id(value: str) -> bool:
    """Whether `value` may name a thread or a run (1-128 of `[A-Za-z0-9_-]`)."""
    return ID_PATTERN.fullmatch(value) is not None


def _token(rng: random.Random, prefix: str, length: int = 24) -> str:
    return prefix + "".join(rng.choice(_ALPHABET) for _ in range(length))


def make_run(thread_id: str, run_id: str) -> Run:
    """A complete Assistants v2 run object, deterministic for `run_id`."""
    rng = random.Random(run_id)  # str seeds hash with SHA-512: stable across processes
    status = rng.choice(_STATUSES)
    created_at = _EPOCH + rng.randrange(200 * 86_400)
    started_at = created_at + rng.randint(1, 3)
    ended_at = started_at + rng.randint(2, 90)
    prompt_tokens = rng.randint(300, 6_000)
    completion_tokens = rng.randint(20, 900)
    tools = rng.choice(_TOOLSETS)
    run: Run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": created_at,
        "assistant_id": _token(rng, "asst_"),
        "thread_id": thread_id,
        "status": status,
        "started_at": started_at,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": "gpt-4o",
        # Documented as a string, but real responses carry null.
        "instructions": None if rng.random() < 0.15 else rng.choice(_INSTRUCTIONS),
        "tools": copy.deepcopy(tools),
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_completion_tokens": rng.choice((None, None, 256, 1_024, 4_096)),
        "max_prompt_tokens": rng.choice((None, None, 2_048, 32_000)),
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "incomplete_details": None,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    _apply_status(run, rng, ended_at)
    return run


def _apply_status(run: Run, rng: random.Random, ended_at: int) -> None:
    """Fill the fields whose values follow from the status, as the API does."""
    status = run["status"]
    if status == "completed":
        run["completed_at"] = ended_at
    elif status == "failed":
        run["failed_at"] = ended_at
        run["last_error"] = {"code": "server_error", "message": "Sorry, something went wrong."}
    elif status == "cancelled":
        run["cancelled_at"] = ended_at
    elif status == "incomplete":
        run["incomplete_details"] = {"reason": "max_completion_tokens"}
        run["max_completion_tokens"] = 256
    else:  # requires_action / in_progress: not finished, so it can still expire and has no usage yet
        run["expires_at"] = run["created_at"] + 600
        run["usage"] = None
    if status == "requires_action":
        if _ORDER_STATUS_TOOL not in run["tools"]:  # the call below needs its function declared
            run["tools"].insert(0, copy.deepcopy(_ORDER_STATUS_TOOL))
        call = {
            "id": _token(rng, "call_"),
            "type": "function",
            "function": {"name": "get_order_status", "arguments": json.dumps({"order_id": "A-1042"})},
        }
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": [call]},
        }


def load_runs_file(path: str | Path) -> list[Run]:
    """Read a JSON array of run objects (the `--runs FILE` of the stand-in)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected a JSON array of run objects")
    return data


class RunStore:
    """The runs the stand-in serves, keyed by (thread_id, run_id); safe to use from many threads.

    Without `runs`, every well-formed id names a run, made by `make_run` on first sight. With `runs`
    (possibly empty), only those runs and the ones added later by `put` exist.
    """

    def __init__(self, runs: Iterable[Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], Run] = {}
        self._changes: list[tuple[str, str, dict[str, str]]] = []
        self._fixed = runs is not None
        for run in runs or ():
            self.put(run)

    @property
    def fixed(self) -> bool:
        """True when only the given runs exist (`--runs FILE`)."""
        return self._fixed

    def put(self, run: Mapping[str, Any]) -> None:
        """Add or replace a run; it must carry string `id` and `thread_id`."""
        run_id, thread_id = run.get("id"), run.get("thread_id")
        if not isinstance(run_id, str) or not isinstance(thread_id, str):
            raise ValueError("a run needs string 'id' and 'thread_id' fields")
        with self._lock:
            self._runs[thread_id, run_id] = copy.deepcopy(dict(run))

    def get(self, thread_id: str, run_id: str) -> Run | None:
        """A copy of the run, or None when it does not exist."""
        with self._lock:
            run = self._lookup(thread_id, run_id)
            return copy.deepcopy(run) if run is not None else None

    def replace_metadata(self, thread_id: str, run_id: str, metadata: Mapping[str, str]) -> Run | None:
        """Replace the run's metadata as a whole (like Modify run) and return a copy of the run."""
        with self._lock:
            run = self._lookup(thread_id, run_id)
            if run is None:
                return None
            run["metadata"] = dict(metadata)
            self._changes.append((thread_id, run_id, dict(metadata)))
            return copy.deepcopy(run)

    def metadata_changes(self) -> list[tuple[str, str, dict[str, str]]]:
        """(thread_id, run_id, metadata) of every Modify run applied so far, in the order applied."""
        with self._lock:
            return copy.deepcopy(self._changes)

    def forget_changes(self) -> None:
        """Start `metadata_changes` afresh (the runs keep their metadata)."""
        with self._lock:
            self._changes.clear()

    def _lookup(self, thread_id: str, run_id: str) -> Run | None:
        run = self._runs.get((thread_id, run_id))
        if run is None and not self._fixed:
            run = self._runs[thread_id, run_id] = make_run(thread_id, run_id)
        return run
