"""Leader election over a ``coordination.k8s.io/v1`` Lease: one scheduling writer.

:func:`decide_lease` is the pure rule (given the Lease as read, who should
write what); :class:`LeaderElector` does the I/O. Optimistic concurrency makes
it safe: every write carries the ``resourceVersion`` that was read, so of two
replicas racing for an expired Lease exactly one wins (the other gets a
Conflict and stays a follower).

A leader that cannot renew stops scheduling as soon as its own view of the
lease expires (measured on its monotonic clock from the last successful renew),
never later than a follower could take over.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpupool.k8s.bodies import Manifest
from gpupool.k8s.client import KubeClient
from gpupool.k8s.errors import AlreadyExists, ApiError, Conflict
from gpupool.k8s.timestamps import parse_rfc3339

logger = logging.getLogger(__name__)


class LeaseVerb(enum.Enum):
    CREATE = "create"
    RENEW = "renew"
    TAKE_OVER = "take-over"
    WAIT = "wait"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseAction:
    verb: LeaseVerb
    body: Manifest | None = None
    """The Lease to write (``None`` for WAIT)."""
    holder: str | None = None
    """Who holds it now (for WAIT)."""


def micro_time(epoch_s: float) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide_lease(
    lease: Manifest | None,
    *,
    name: str,
    namespace: str,
    identity: str,
    now: float,
    duration_s: int,
) -> LeaseAction:
    """What ``identity`` should do about the Lease it just read (``None``: it does not exist)."""
    if lease is None:
        return LeaseAction(
            verb=LeaseVerb.CREATE,
            body={
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "holderIdentity": identity,
                    "leaseDurationSeconds": duration_s,
                    "acquireTime": micro_time(now),
                    "renewTime": micro_time(now),
                    "leaseTransitions": 0,
                },
            },
        )
    spec: dict[str, Any] = dict(lease.get("spec") or {})
    holder = spec.get("holderIdentity") or None
    renewed = parse_rfc3339(spec.get("renewTime")) or 0.0
    duration = float(spec.get("leaseDurationSeconds") or duration_s)
    meta = {
        "name": name,
        "namespace": namespace,
        "resourceVersion": (lease.get("metadata") or {}).get("resourceVersion"),
    }
    if holder == identity:
        spec.update(renewTime=micro_time(now), leaseDurationSeconds=duration_s)
        return LeaseAction(
            verb=LeaseVerb.RENEW, body={**_shell(lease), "metadata": meta, "spec": spec}
        )
    if holder is not None and renewed + duration > now:
        return LeaseAction(verb=LeaseVerb.WAIT, holder=holder)
    spec.update(
        holderIdentity=identity,
        leaseDurationSeconds=duration_s,
        acquireTime=micro_time(now),
        renewTime=micro_time(now),
        leaseTransitions=int(spec.get("leaseTransitions") or 0) + 1,
    )
    return LeaseAction(
        verb=LeaseVerb.TAKE_OVER, body={**_shell(lease), "metadata": meta, "spec": spec}
    )


def _shell(lease: Manifest) -> Manifest:
    return {
        "apiVersion": lease.get("apiVersion", "coordination.k8s.io/v1"),
        "kind": lease.get("kind", "Lease"),
    }


class LeaderElector:
    """Acquires and renews the Lease; ``is_leader`` is safe to read from any thread."""

    def __init__(
        self,
        *,
        client: KubeClient,
        name: str,
        namespace: str,
        identity: str,
        duration_s: int = 15,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration_s = duration_s
        self._clock = clock
        self._monotonic = monotonic
        self._valid_until = float("-inf")
        self.holder: str | None = None

    @property
    def is_leader(self) -> bool:
        return self._monotonic() < self._valid_until

    def renew_interval_s(self) -> float:
        return max(0.5, self.duration_s / 3)

    def step(self) -> bool:
        """Read the Lease and create / renew / take it over if due; whether we lead now."""
        started = self._monotonic()
        try:
            lease = self._client.get_lease(namespace=self.namespace, name=self.name)
            action = decide_lease(
                lease,
                name=self.name,
                namespace=self.namespace,
                identity=self.identity,
                now=self._clock(),
                duration_s=self.duration_s,
            )
            if action.verb is LeaseVerb.WAIT:
                self.holder = action.holder
                return self.is_leader
            assert action.body is not None
            if action.verb is LeaseVerb.CREATE:
                self._client.create_lease(action.body)
            else:
                self._client.replace_lease(action.body)
        except (AlreadyExists, Conflict):
            return self.is_leader  # someone else wrote first; try again next step
        except ApiError as error:
            logger.warning("lease %s/%s: %s", self.namespace, self.name, error)
            return self.is_leader
        if not self.is_leader:
            logger.info(
                "became the scheduling leader (%s, lease %s/%s)",
                self.identity,
                self.namespace,
                self.name,
            )
        self.holder = self.identity
        # a margin so the leader stops before a follower could see the lease as expired
        self._valid_until = started + self.duration_s * 0.8
        return True

    def release(self) -> None:
        """Give the Lease up on shutdown so a successor takes over at once."""
        if not self.is_leader:
            return
        self._valid_until = float("-inf")
        try:
            lease = self._client.get_lease(namespace=self.namespace, name=self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"])
            spec["holderIdentity"] = None
            spec["renewTime"] = micro_time(0)
            self._client.replace_lease({**lease, "spec": spec})
        except ApiError as error:
            logger.info("lease not released (%s); it expires on its own", error)
