"""Kafka traffic for the demo: a producer and consumer groups at different speeds.

``KafkaSimulator(bootstrap).start()`` creates two topics, produces to them at a
steady rate (one record per batch, so the test broker's offsets are exact) and
runs three consumer groups:

- ``<prefix>-pricing`` keeps up (consumes everything, commits often): status ok;
- ``<prefix>-risk`` consumes a quarter of what is produced: lag grows, status warn;
- ``<prefix>-audit`` committed once and stopped, with no members: status stop.

``stop()`` cancels everything and closes the clients. ``python -m stack.sim_kafka
--bootstrap HOST:PORT`` runs it until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

TIMEOUT_MS = 10_000


@dataclass
class KafkaSimulator:
    """Producer plus consumer groups that keep up, lag and stop."""

    bootstrap: str
    prefix: str = "sim"
    rate: float = 10.0
    """Records per second per topic."""
    partitions: int = 3
    lagging: bool = True
    """False: every consumer group keeps up (``<prefix>-pricing`` and
    ``<prefix>-audit`` as members, ``<prefix>-batch`` committing for assigned
    partitions without members), for a stack where nothing is wrong until a test
    says so."""
    batch: bool = True
    """With ``lagging`` False: also run ``<prefix>-batch``."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _groups: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _commits: dict[str, asyncio.Event] = field(default_factory=dict)
    _clients: list[AIOKafkaProducer | AIOKafkaConsumer] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        """The topics produced to."""
        return [f"{self.prefix}-prices", f"{self.prefix}-orders"]

    @property
    def groups(self) -> dict[str, str]:
        """Group name -> the status it is meant to show."""
        if not self.lagging:
            groups = {f"{self.prefix}-pricing": "ok", f"{self.prefix}-audit": "ok"}
            return groups | ({f"{self.prefix}-batch": "ok"} if self.batch else {})
        return {
            f"{self.prefix}-pricing": "ok",
            f"{self.prefix}-risk": "warn",
            f"{self.prefix}-audit": "stop",
        }

    async def start(self) -> None:
        """Create the topics and start producing and consuming."""
        await self._create_topics()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, request_timeout_ms=TIMEOUT_MS, linger_ms=0
        )
        await producer.start()
        self._clients.append(producer)
        await self._produce_round(producer)
        if not self.lagging:
            self._tasks = [asyncio.create_task(self._produce(producer), name="sim-kafka-produce")]
            for group in self.groups:
                self.start_group(group, assigned=group.endswith("-batch"))
            return
        await self._stopped_group()
        pricing, risk = (f"{self.prefix}-pricing", f"{self.prefix}-risk")
        self._tasks = [
            asyncio.create_task(self._produce(producer), name="sim-kafka-produce"),
            asyncio.create_task(self._consume(pricing, None), name="sim-kafka-pricing"),
            asyncio.create_task(self._consume(risk, self.rate / 4), name="sim-kafka-risk"),
        ]

    def start_group(self, group: str, assigned: bool = False) -> None:
        """(Re)start a consumer of ``group`` that keeps up: a member of the group, or
        (``assigned``) one that assigns itself every partition and commits for the
        group without joining it, as stream processors do."""
        work = self._consume_assigned(group) if assigned else self._consume(group, None)
        self._groups[group] = asyncio.create_task(work, name=f"sim-kafka-{group}")

    async def committing(self, group: str, timeout: float = 60.0) -> None:
        """Wait until ``group``'s consumer commits for every partition (after a
        rebalance, say: a broker that keeps a departed member hands it some
        partitions until that member expires)."""
        committed = self._commits.setdefault(group, asyncio.Event())
        committed.clear()
        await asyncio.wait_for(committed.wait(), timeout)

    async def stop_group(self, group: str) -> None:
        """Stop the consumer of ``group``: it leaves the group and commits no more."""
        task = self._groups.pop(group)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def stop(self) -> None:
        """Stop producing and consuming; close every client."""
        for group in list(self._groups):
            await self.stop_group(group)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for client in self._clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.stop(), timeout=5)
        self._clients.clear()

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=TIMEOUT_MS)
        await admin.start()
        try:
            for topic in self.topics:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(topic, self.partitions, 1)])
        finally:
            await admin.close()

    async def _produce_round(self, producer: AIOKafkaProducer) -> None:
        for topic in self.topics:
            for partition in range(self.partitions):
                await producer.send_and_wait(topic, b"seed", partition=partition)

    async def _produce(self, producer: AIOKafkaProducer) -> None:
        pause = 1.0 / (self.rate * len(self.topics))
        targets = itertools.cycle([(t, p) for p in range(self.partitions) for t in self.topics])
        for n, (topic, partition) in enumerate(targets):
            await producer.send_and_wait(topic, b"tick %d" % n, partition=partition)
            await asyncio.sleep(pause)

    async def _stopped_group(self) -> None:
        """Commit offset 0 everywhere without joining, then never again."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.prefix}-audit",
            enable_auto_commit=False,
            request_timeout_ms=TIMEOUT_MS,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in self.topics for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.commit(dict.fromkeys(tps, 0))
        finally:
            await consumer.stop()

    async def _consume_assigned(self, group: str) -> None:
        consumer = await self._consumer(group, subscribe=False)
        consumer.assign([TopicPartition(t, p) for t in self.topics for p in range(self.partitions)])
        await self._keep_up(group, consumer)

    async def _consumer(self, group: str, subscribe: bool = True) -> AIOKafkaConsumer:
        """A started consumer of ``group``, subscribed to the topics (or not: the caller
        assigns partitions), committing by hand from the earliest offset."""
        consumer = AIOKafkaConsumer(
            *(self.topics if subscribe else ()),
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=TIMEOUT_MS,
        )
        await consumer.start()
        return consumer

    async def _keep_up(self, group: str, consumer: AIOKafkaConsumer) -> None:
        """Consume and commit as fast as records come, until cancelled; then leave."""
        try:
            while True:
                if await consumer.getmany(timeout_ms=500):
                    await consumer.commit()
                    if len(consumer.assignment()) == len(self.topics) * self.partitions:
                        self._commits.setdefault(group, asyncio.Event()).set()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=5)

    async def _consume(self, group: str, rate: float | None) -> None:
        """Consume and commit; ``rate`` caps records per second (None: as fast as it can)."""
        consumer = await self._consumer(group)
        if rate is None:
            await self._keep_up(group, consumer)
            return
        self._clients.append(consumer)
        # One record at a time, visiting the partitions in turn: every partition
        # moves, each slower than it is produced to (a consumer fed from whatever it
        # fetched last would leave the others stalled for long spells).
        while True:
            for tp in sorted(consumer.assignment()) or [None]:
                if tp is not None and await consumer.getmany(tp, timeout_ms=500, max_records=1):
                    await consumer.commit()
                await asyncio.sleep(1.0 / rate)


async def run(bootstrap: str, prefix: str = "sim", rate: float = 10.0) -> None:
    """Run the simulator until cancelled."""
    sim = KafkaSimulator(bootstrap, prefix=prefix, rate=rate)
    await sim.start()
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Kafka traffic for the demo")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="sim")
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.bootstrap, args.prefix, args.rate))


if __name__ == "__main__":
    main()
