"""Writing a set of VFR cache entries so that readers see the old set or the new one.

`publish` writes a whole set in one MULTI/EXEC (readers see the old set or the new one, never
a mix), validates every entry before sending anything, stores a large payload as VFR's own
writer does (`{key}:compressed` + `{key}:meta`), and retries connection failures by
re-sending the whole transaction (redis_transport.py). The design and its limits are in
docs/serving.md.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from vfr_ml_pipelines.lib.serving.redis_transport import DEFAULT_RETRY, PublishError, RetryPolicy, run_transaction
from vfr_ml_pipelines.lib.serving.vfr_codec import (
    SOURCE,
    encode_js_json,
    encode_payload,
    envelope_tail,
    wrap_envelope,
)
from vfr_ml_pipelines.lib.serving.vfr_keys import compressed_key, meta_key

# VFR's own writers compress payloads whose JSON is longer than this
COMPRESSION_THRESHOLD = 8192


@dataclass(frozen=True)
class CacheWrite:
    """One VFR cache entry to write: the key without prefix, the payload, its TTL."""

    key: str
    data: Any
    ttl: int
    compressible: bool = True


@dataclass
class PublishReport:
    written: int = 0
    compressed: int = 0
    deleted: int = 0
    bytes: int = 0
    keys: list[str] = field(default_factory=list)
    # transactions sent until each was applied (1 per transaction when each first try was)
    attempts: int = 0
    transactions: int = 0  # applied


@dataclass
class _Plan:
    # per entry: its SETs (key, value, ttl) and the keys that go with it (a stale compressed
    # pair, or the plain key of a compressed entry)
    entries: list[tuple[list[tuple[str, bytes, int]], list[str]]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # deleted keys with their pairs

    @property
    def sets(self) -> list[tuple[str, bytes, int]]:
        return [write for writes, _ in self.entries for write in writes]

    def transactions(self, max_entries: int | None = None, batch: int = 1000) -> list[list[tuple[Any, ...]]]:
        """The commands as one transaction, or as several of at most `max_entries` entries
        each: an entry's SETs and its unlinks always share one, and the stale keys go with
        the last. Deletions first, then writes: inside a MULTI/EXEC the order is invisible."""
        if max_entries is None or len(self.entries) <= max_entries:
            groups = [self.entries]
        else:
            groups = [self.entries[i : i + max_entries] for i in range(0, len(self.entries), max_entries)]
        out: list[list[tuple[Any, ...]]] = []
        for number, group in enumerate(groups, start=1):
            unlink = [key for _, keys in group for key in keys]
            if number == len(groups):
                unlink.extend(self.stale)
            commands: list[tuple[Any, ...]] = [("UNLINK", *unlink[i : i + batch]) for i in range(0, len(unlink), batch)]
            commands.extend(("SET", key, value, "EX", ttl) for writes, _ in group for key, value, ttl in writes)
            if commands:
                out.append(commands)
        return out

    def commands(self) -> list[tuple[Any, ...]]:
        """Everything in one transaction."""
        return [command for transaction in self.transactions() for command in transaction]


def _plan_publish(
    prefix: str,
    writes: Sequence[CacheWrite],
    deletes: Iterable[str],
    *,
    version: str,
    now_ms: int,
    compression_threshold: int | None,
    keep_plain_copy: bool,
    report: PublishReport,
) -> _Plan:
    """Encode (and so validate) every entry before anything is sent."""
    plan = _Plan()
    seen: set[str] = set()
    source_json, version_json = encode_js_json(SOURCE), encode_js_json(version)
    for write in writes:
        if not isinstance(write.key, str) or not write.key:
            raise ValueError(f"a CacheWrite needs a non-empty string key, got {write.key!r}")
        if write.key in seen:
            raise ValueError(f"{write.key} is written twice in one publish")
        seen.add(write.key)
        ttl = int(write.ttl)
        if ttl <= 0:
            raise ValueError(f"{write.key}: ttl must be a positive number of seconds, got {write.ttl}")
        tail = envelope_tail(now_ms=now_ms, ttl=ttl, source_json=source_json, version_json=version_json)
        payload = encode_payload(write.key, write.data)
        key = prefix + write.key
        if write.compressible and compression_threshold is not None and len(payload) > compression_threshold:
            encoded = base64.b64encode(payload)  # base64 needs no JSON escaping
            meta = {"compressed": True, "originalSize": len(payload), "compressedSize": len(encoded)}
            sets = [(compressed_key(key), wrap_envelope(b'"' + encoded + b'"', tail), ttl),
                    (meta_key(key), wrap_envelope(encode_js_json(meta), tail), ttl)]
            unlink: list[str] = []
            if keep_plain_copy:
                sets.append((key, wrap_envelope(payload, tail), ttl))
            else:
                unlink.append(key)
            report.compressed += 1
        else:
            sets = [(key, wrap_envelope(payload, tail), ttl)]
            # a stale compressed pair from an earlier large write would shadow this value
            unlink = [meta_key(key), compressed_key(key)]
        plan.entries.append((sets, unlink))
        report.written += 1
        report.keys.append(write.key)
    stale = list(deletes)
    for key in stale:
        if key in seen:
            raise ValueError(f"{key} is both written and deleted in one publish")
        # a key is gone for VFR only when its compressed pair is gone too
        plan.stale.extend((prefix + key, meta_key(prefix + key), compressed_key(prefix + key)))
    report.deleted = len(stale)
    report.bytes = sum(len(value) for _, value, _ in plan.sets)
    return plan


def publish(
    client: redis.Redis,
    prefix: str,
    writes: Sequence[CacheWrite],
    *,
    version: str,
    deletes: Iterable[str] = (),
    now_ms: int | None = None,
    compression_threshold: int | None = COMPRESSION_THRESHOLD,
    keep_plain_copy: bool = False,
    max_entries_per_transaction: int | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    socket_timeout: float | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> PublishReport:
    """Write entries and delete keys in one MULTI/EXEC transaction, so a reader sees either
    everything before or everything after.

    - Every value is serialised (and so validated) before anything is sent: a payload with
      NaN or a non-JSON value raises MalformedEntryError naming the key and writes nothing.
    - A payload over `compression_threshold` characters is stored as VFR's own writer stores
      it (`{key}:compressed` + `{key}:meta`); a plain write removes a stale pair; a deleted
      key loses its pair too. `keep_plain_copy` also writes the plain key of a compressed
      entry, which closes a reader race (docs/serving.md) at the cost of memory.
    - Redis runs nothing else while it applies a transaction (about 1 us per entry), so
      readers wait for it. `max_entries_per_transaction` trades the set-wide switch for
      shorter waits: several transactions of at most that many entries, each entry still
      whole with its companions, the stale deletions in the last; until the last one is
      applied, readers can see new entries beside previous ones (docs/serving.md).
    - Connection failures and timeouts are retried per `retry`, re-sending the whole (same,
      idempotent) transaction on a fresh connection with `socket_timeout` (the client's own,
      else DEFAULT_SOCKET_TIMEOUT); when all attempts fail, PublishError says what, where,
      how often and why (and, when split, how many transactions had been applied).
    """
    if max_entries_per_transaction is not None and (
        isinstance(max_entries_per_transaction, bool) or int(max_entries_per_transaction) < 1
    ):
        raise ValueError(f"max_entries_per_transaction must be None or at least 1, got {max_entries_per_transaction!r}")
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    report = PublishReport()
    plan = _plan_publish(
        prefix, writes, deletes, version=version, now_ms=now_ms, compression_threshold=compression_threshold,
        keep_plain_copy=keep_plain_copy, report=report,
    )
    transactions = plan.transactions(max_entries_per_transaction)
    what = f"publishing {report.written:,} entr{'y' if report.written == 1 else 'ies'} ({report.bytes:,} bytes)"
    if report.deleted:
        what += f" and {report.deleted:,} deletion{'' if report.deleted == 1 else 's'}"
    for number, commands in enumerate(transactions, start=1):
        part = what if len(transactions) == 1 else f"{what}, transaction {number} of {len(transactions)}"
        try:
            _, attempts = run_transaction(
                client, commands, what=part, retry=retry, socket_timeout=socket_timeout, on_retry=on_retry
            )
        except PublishError as exc:
            if number == 1:
                raise
            raise PublishError(
                f"{exc} {number - 1} of {len(transactions)} transactions of this publish had been applied before it: "
                "until a publish succeeds, readers see their new entries beside the previous ones of the rest.",
                what=exc.what, server=exc.server, attempts=exc.attempts, last_error=exc.last_error,
                maybe_applied=exc.maybe_applied,
            ) from None
        report.attempts += attempts
        report.transactions += 1
    return report

