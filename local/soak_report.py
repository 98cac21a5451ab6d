"""What a soak saw: requests published, dead-lettered, lost, doubled, or applied out of order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# (thread_id, run_id, metadata) of one Modify run call, as the stand-in took it in or applied it.
RunChange = tuple[str, str, Mapping[str, str]]


@dataclass
class SoakReport:
    sent: int = 0
    messages: int = 0
    faults_injected: int = 0
    deliveries: int = 0
    lost_deletes: int = 0
    tagged: Counter[str] = field(default_factory=Counter)
    dead: dict[str, list[str]] = field(default_factory=dict)  # request_id: its DLQ entries' codes
    left_on_queue: int = 0
    runs_out_of_order: int | None = None  # checked on a FIFO queue only, where a run is a message group
    rotated: bool = False

    @property
    def duplicates(self) -> int:
        """Requests published as Run Tagged more than once."""
        return sum(1 for count in self.tagged.values() if count > 1)

    @property
    def tagged_and_dead(self) -> int:
        """Tagged requests also in the DLQ: one copy dead-lettered and another tagged, or a tagged
        message whose deletions were lost until SQS moved it."""
        return sum(1 for request_id in self.dead if request_id in self.tagged)

    @property
    def reasonless(self) -> int:
        """Requests not tagged whose every DLQ entry is SQS's redrive, which keeps no reason."""
        return sum(
            1
            for request_id, codes in self.dead.items()
            if set(codes) == {"redrive"} and request_id not in self.tagged
        )

    def lost(self, request_ids: list[str]) -> int:
        return sum(1 for rid in request_ids if rid not in self.tagged and rid not in self.dead)

    def passed(self, request_ids: list[str]) -> bool:
        return (
            self.lost(request_ids) == 0
            and self.duplicates == 0
            and self.left_on_queue == 0
            and not self.runs_out_of_order
        )

    def render(self, request_ids: list[str], seconds: float) -> str:
        codes = Counter(code for entries in self.dead.values() for code in entries)
        order = (
            "not checked (a standard queue keeps no order)"
            if self.runs_out_of_order is None
            else f"{self.runs_out_of_order} (runs whose calls or metadata went back to an earlier request)"
        )
        lines = [
            f"requests sent        {self.sent} ({self.messages} messages, duplicates included)",
            f"key rotated          {'yes' if self.rotated else 'no (one wave only)'}",
            f"faults injected      {self.faults_injected}",
            f"deliveries           {self.deliveries} (lost deletions: {self.lost_deletes})",
            f"events published     {sum(self.tagged.values())} Run Tagged for {len(self.tagged)} requests",
            f"DLQ entries          {codes.total()} for {len(self.dead)} requests: "
            + ", ".join(f"{code} {count}" for code, count in sorted(codes.items())),
            f"only reason-less     {self.reasonless} (not tagged, and only SQS's redrive moved it)",
            f"tagged, also in DLQ  {self.tagged_and_dead} (another copy dead-lettered, or SQS moved it)",
            f"left on the queue    {self.left_on_queue}",
            f"duplicates           {self.duplicates}",
            f"runs out of order    {order}",
            f"lost                 {self.lost(request_ids)}",
            f"time                 {seconds:.1f}s",
        ]
        return "\n".join(lines)

    def verdict(self, request_ids: list[str]) -> str:
        if self.passed(request_ids):
            kept = "" if self.runs_out_of_order is None else ", every run's order kept"
            return f"PASS: nothing lost, nothing published twice, nothing left on the queue{kept}"
        return "FAIL"


def runs_out_of_order(
    thread_id: str, sent_at: Mapping[str, int], calls: Iterable[RunChange], applied: Iterable[RunChange]
) -> int:
    """Runs of `thread_id` whose Modify run calls, or the changes applied, went back to an earlier request.

    `sent_at` maps a request's `metadata["n"]` to its place in the order the requests were sent. Each
    sequence, in the order the stand-in saw it, must not go back within a run: the same request may
    come again (a retry), but no request may be called or applied after one sent later, even if it is
    then dead-lettered. Calls and changes without a known `n` are not the soak's and are skipped.
    """
    late: set[str] = set()
    for sequence in (calls, applied):
        latest: dict[str, int] = {}
        for thread, run_id, metadata in sequence:
            at = sent_at.get(metadata.get("n", ""))
            if thread != thread_id or at is None:
                continue
            if at < latest.get(run_id, -1):
                late.add(run_id)
            latest[run_id] = max(at, latest.get(run_id, -1))
    return len(late)
