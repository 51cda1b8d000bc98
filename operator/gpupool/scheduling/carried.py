"""Per-workload facts carried from one cycle to the next.

Workloads are frozen: the simulator and the operator's cache replace a workload
object when anything about it changes and share it unchanged otherwise. What a
cycle derives from a workload object alone (plus a config that is itself frozen)
is therefore the same next cycle for every object that is still there, and the
queue is mostly the same objects from one cycle to the next.

A :class:`CarriedFacts` keeps, per owner (the object the facts also depend on,
e.g. the config), a mapping from workload UID to the facts last derived for it.
Each fact tuple holds its workload first: a hit counts only if that is the very
same object (a replaced workload is derived again), so what is cached never
changes a result. The cycle adds what it derives and replaces the mapping with
one of its own workloads once too many gone ones accumulate, which bounds the
memory to about one cycle's workloads. Like
:func:`~gpupool.scheduling.capacity.node_layout` it is a cache of pure functions:
same inputs, same outputs, whatever it holds.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

_F = TypeVar("_F", bound=tuple[Any, ...])

_OWNERS_MAX = 16


class CarriedFacts(Generic[_F]):
    """Facts per workload UID from earlier cycles, per owner (see the module)."""

    __slots__ = ("_by_owner",)

    def __init__(self) -> None:
        self._by_owner: dict[int, tuple[object, dict[str, _F]]] = {}

    def previous(self, owner: object) -> dict[str, _F]:
        """The mapping kept for this owner (a new empty one if none: :meth:`keep` it to
        carry it). The caller may add to it in place."""
        hit = self._by_owner.get(id(owner))
        if hit is not None and hit[0] is owner:
            return hit[1]
        return {}

    def keep(self, owner: object, facts: dict[str, _F]) -> None:
        """Carry ``facts`` (UID -> facts, workload first) to the next cycle."""
        by_owner = self._by_owner
        if id(owner) not in by_owner and len(by_owner) >= _OWNERS_MAX:
            by_owner.clear()
        by_owner[id(owner)] = (owner, facts)

    def clear(self) -> None:
        self._by_owner.clear()
