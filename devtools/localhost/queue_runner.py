"""Driving a queue trigger from Storage the way the WebJobs queue listener does.

Messages are fetched in batches (host.json batchSize), hidden for ten minutes while they run,
and handled in a thread pool; the next batch is fetched once no more than newBatchThreshold
are still running. On success the message is deleted. On failure it becomes visible again
after host.json visibilityTimeout, unless this was attempt number maxDequeueCount: then it is
copied, text unchanged, to `<queue>-poison` and deleted. A message that arrives with a dequeue
count above maxDequeueCount (the host died mid-attempt) is poisoned without running.
An empty fetch waits one poll interval before the next.
"""
from __future__ import annotations

import inspect
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.functions.queue import QueueMessage as FunctionQueueMessage

from devtools.localhost.host_config import QueueOptions
from devtools.localhost.invocation import Invoker
from devtools.localhost.metadata import FunctionInfo
from devtools.localhost.queue_storage import QueueClients, decode_message

log = logging.getLogger("devtools.localhost.queues")

RUNNING_VISIBILITY_SECONDS = 600  # the listener's initial visibility for a message being processed


def poison_queue_name(queue_name: str) -> str:
    return f"{queue_name}-poison"


@dataclass(frozen=True)
class QueueTrigger:
    info: FunctionInfo
    queue_name: str  # with %SETTING% references resolved
    connection: str


def function_message(message, body: bytes) -> FunctionQueueMessage:
    """The worker's QueueMessage for a Storage message and its decoded body."""
    return FunctionQueueMessage(
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        expiration_time=message.expires_on,
        insertion_time=message.inserted_on,
        time_next_visible=message.next_visible_on,
        pop_receipt=message.pop_receipt,
    )


def trigger_argument(info: FunctionInfo, message: FunctionQueueMessage):
    """The QueueMessage, or its body when the parameter is annotated str or bytes."""
    parameter = inspect.signature(info.function).parameters.get(info.trigger_name)
    annotation = parameter.annotation if parameter is not None else None
    if annotation in (str, "str"):
        return message.get_body().decode("utf-8")
    if annotation in (bytes, "bytes"):
        return message.get_body()
    return message


class QueueRunner:
    """One listener thread per queue trigger, handing messages to a pool of workers."""

    def __init__(self, trigger: QueueTrigger, invoker: Invoker, clients: QueueClients,
                 options: QueueOptions, poll_seconds: float):
        self.trigger = trigger
        self.invoker = invoker
        self.clients = clients
        self.options = options
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._in_flight = 0
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(
            max_workers=options.batch_size + options.fetch_threshold,
            thread_name_prefix=f"queue-{trigger.info.name}",
        )
        self._thread = threading.Thread(target=self._listen, name=f"listen-{trigger.info.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.trigger.info.name

    def start(self) -> None:
        self._queue()  # create the queue now, so a bad connection fails the start
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self._pool.shutdown(wait=False)
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight == 0, timeout=timeout):
                log.warning("%s: %d message(s) still running after %.0f s; they will be retried after their "
                            "visibility timeout", self.name, self._in_flight, timeout)

    def _queue(self):
        return self.clients.queue(self.trigger.connection, self.trigger.queue_name)

    def _listen(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                while self._in_flight > self.options.fetch_threshold and not self._stop.is_set():
                    self._changed.wait(timeout=self.poll_seconds)
            if self._stop.is_set():
                return
            try:
                messages = self._fetch()
            except Exception as exc:  # storage unreachable: say so briefly and keep polling
                log.warning("%s: cannot read queue %s: %s", self.name, self.trigger.queue_name,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._stop.wait(self.poll_seconds)
                continue
            if not messages:
                self._stop.wait(self.poll_seconds)
                continue
            for message in messages:
                with self._changed:
                    self._in_flight += 1
                self._pool.submit(self._handle, message)

    def _fetch(self) -> list:
        pages = self._queue().receive_messages(
            messages_per_page=self.options.batch_size,
            max_messages=self.options.batch_size,
            visibility_timeout=RUNNING_VISIBILITY_SECONDS,
        ).by_page()
        return list(next(pages, []))

    def _handle(self, message) -> None:
        try:
            self.process(message)
        except Exception:
            log.exception("%s: could not settle message %s", self.name, message.id)
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def process(self, message) -> None:
        """Run one received message and settle it: delete, release for a retry, or poison."""
        limit = self.options.max_dequeue_count
        if message.dequeue_count > limit:
            log.error("%s: message %s was dequeued %d times (max %d); moving it to %s",
                      self.name, message.id, message.dequeue_count, limit, poison_queue_name(self.trigger.queue_name))
            self._poison(message)
            return
        try:
            body = decode_message(message.content, self.options.message_encoding)
            self.invoker.call(self.trigger.info, trigger_argument(self.trigger.info, function_message(message, body)))
        except Exception:
            log.exception("%s failed on message %s (attempt %d of %d)", self.name, message.id,
                          message.dequeue_count, limit)
            if message.dequeue_count >= limit:
                log.error("%s: message %s failed %d times; moving it to %s", self.name, message.id,
                          message.dequeue_count, poison_queue_name(self.trigger.queue_name))
                self._poison(message)
            else:
                self._queue().update_message(message.id, pop_receipt=message.pop_receipt,
                                             visibility_timeout=int(self.options.visibility_timeout))
            return
        self._queue().delete_message(message.id, message.pop_receipt)

    def _poison(self, message) -> None:
        poison = self.clients.queue(self.trigger.connection, poison_queue_name(self.trigger.queue_name))
        poison.send_message(message.content)
        self._queue().delete_message(message.id, message.pop_receipt)
