"""What a soak saw: requests published, dead-lettered, lost, doubled, or applied out of order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
    def failed_then_tagged(self) -> int:
        """Tagged requests also in the DLQ: one copy dead-lettered and another tagged, or a tagged
        message whose deletions were lost until SQS moved it."""
        return sum(1 for request_id in self.dead if request_id in self.tagged)

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
        reasonless = sum(
            1 for rid, entries in self.dead.items() if set(entries) == {"redrive"} and rid not in self.tagged
        )
        lines = [
            f"requests sent        {self.sent} ({self.messages} messages, duplicates included)",
            f"faults injected      {self.faults_injected}",
            f"deliveries           {self.deliveries} (lost deletions: {self.lost_deletes})",
            f"events published     {sum(self.tagged.values())} Run Tagged for {len(self.tagged)} requests",
            f"DLQ entries          {codes.total()} for {len(self.dead)} requests: "
            + ", ".join(f"{code} {count}" for code, count in sorted(codes.items())),
            f"only reason-less     {reasonless} (not tagged, and only SQS's redrive moved it)",
            f"tagged, also in DLQ  {self.failed_then_tagged} (another copy dead-lettered, or SQS moved it)",
            f"left on the queue    {self.left_on_queue}",
            f"duplicates           {self.duplicates}",
            "runs out of order    "
            + (
                "not checked (a standard queue keeps no order)"
                if self.runs_out_of_order is None
                else f"{self.runs_out_of_order} (a run's metadata went back to an earlier request)"
            ),
            f"lost                 {self.lost(request_ids)}",
            f"time                 {seconds:.1f}s",
        ]
        return "\n".join(lines)
