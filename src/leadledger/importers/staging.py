"""Grouping a file's facts by lead without holding the file in memory.

Rows of one lead are scattered through an export and not in time order, yet each lead must be written
whole, in time order, in one transaction. Facts are hash-partitioned by lead into anonymous temporary
files (unlinked as soon as they are created, so a killed import leaves nothing behind) and each
partition is then grouped in memory. A partition holds about `PARTITION_BYTES` of source text, so memory
stays flat whatever the file's size; a small file is one partition and never touches the disk.
"""

from __future__ import annotations

import marshal
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from leadledger.importers.facts import Fact

PARTITION_BYTES = 48 * 1024 * 1024
BUFFERED_FACTS = 200_000  # facts held in memory across all partitions before they go to disk


class FactStore:
    """Facts in, then (lead, facts) out: every fact of a lead together, leads in id order within a partition."""

    def __init__(self, source_bytes: int):
        self.partitions = max(1, -(-source_bytes // PARTITION_BYTES))
        self.count = 0
        self._memory: list[Fact] = []
        self._files: list[IO[bytes]] = []
        self._buffers: list[list[tuple[object, ...]]] = []
        if self.partitions > 1:
            # unlinked at once: closed by close(), and gone with the process however it ends
            self._files = [tempfile.TemporaryFile(prefix="leadledger-import-") for _ in range(self.partitions)]  # noqa: SIM115
            self._buffers = [[] for _ in range(self.partitions)]
            self._flush_at = max(1_000, BUFFERED_FACTS // self.partitions)

    def add(self, fact: Fact) -> None:
        self.count += 1
        if self.partitions == 1:
            self._memory.append(fact)
            return
        index = hash(fact[0]) % self.partitions
        buffer = self._buffers[index]
        buffer.append(tuple(fact))
        if len(buffer) >= self._flush_at:
            _dump(buffer, self._files[index])
            buffer.clear()

    def groups(self) -> Iterator[tuple[str, list[Fact]]]:
        """Every lead with its facts; may be called more than once (a strict run plans before it writes)."""
        if self.partitions == 1:
            yield from _grouped(self._memory, made=True)
            return
        for index, file in enumerate(self._files):
            buffer = self._buffers[index]
            if buffer:
                _dump(buffer, file)
                buffer.clear()
            file.flush()
            file.seek(0)
            loaded: list[tuple[object, ...]] = []
            while header := file.read(8):
                loaded.extend(marshal.loads(file.read(int.from_bytes(header, "little"))))
            yield from _grouped(loaded)
            del loaded

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files = []
        self._memory = []


def _dump(block: list[tuple[object, ...]], file: IO[bytes]) -> None:
    """A block as its length then its bytes: marshal.load() on a file reads in tiny pieces, loads() on bytes does not."""
    data = marshal.dumps(block)
    file.write(len(data).to_bytes(8, "little"))
    file.write(data)


def _grouped(facts: list[Any], *, made: bool = False) -> Iterator[tuple[str, list[Fact]]]:
    """Facts by lead, leads in id order: neighbouring leads share pages of the leads table and its indexes,
    so a batch of them is written with far fewer pages touched than leads in hash order."""
    by_lead: dict[str, list[Fact]] = {}
    for raw in facts:
        fact = raw if made else Fact._make(raw)
        group = by_lead.get(fact.lead)
        if group is None:
            by_lead[fact.lead] = [fact]
        else:
            group.append(fact)
    for lead in sorted(by_lead):
        yield lead, by_lead[lead]
