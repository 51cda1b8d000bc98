"""NVLink islands from a node's link table: which GPUs are peers, which share a domain.

Pure: the NVML adapter reads the links once at start and hands the table here.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class NvLinkTopology:
    """Per GPU index: its NVLink peers (sorted) and its domain (``None`` without NVLink)."""

    peers: Mapping[int, tuple[int, ...]]
    domains: Mapping[int, int | None]


def nvlink_topology(
    *,
    gpu_indices: Set[int],
    direct_links: Mapping[int, Set[int]],
    switch_attached: Set[int],
) -> NvLinkTopology:
    """Peers and domains from direct GPU-GPU links and NVSwitch attachment.

    ``direct_links[i]`` are GPUs that GPU ``i`` reaches over its own active links
    (links are symmetric even if only one side reported them); every GPU in
    ``switch_attached`` reaches every other one through the NVSwitch fabric. A
    domain is a connected island, named by its smallest GPU index, so GPU 0..7 of
    an HGX board are all domain 0 and two NVLink pairs are domains 0 and 2.
    """
    adjacency: dict[int, set[int]] = {index: set() for index in gpu_indices}
    for index, remotes in direct_links.items():
        for remote in remotes:
            if remote != index and index in adjacency and remote in adjacency:
                adjacency[index].add(remote)
                adjacency[remote].add(index)
    switched = sorted(switch_attached & gpu_indices)
    for index in switched:
        adjacency[index].update(other for other in switched if other != index)

    domains: dict[int, int | None] = {}
    for start in sorted(adjacency):
        if start in domains:
            continue
        if not adjacency[start]:
            domains[start] = None
            continue
        island = _island(adjacency, start)
        for member in island:
            domains[member] = min(island)
    return NvLinkTopology(
        peers={index: tuple(sorted(remotes)) for index, remotes in adjacency.items()},
        domains=domains,
    )


def _island(adjacency: Mapping[int, Set[int]], start: int) -> set[int]:
    seen = {start}
    frontier = [start]
    while frontier:
        current = frontier.pop()
        for remote in adjacency[current]:
            if remote not in seen:
                seen.add(remote)
                frontier.append(remote)
    return seen


def normalize_pci_bus_id(bus_id: str | bytes) -> str:
    """``"00000000:3B:00.0"`` and ``"0000:3b:00.0"`` to one form: ``"0000:3b:00.0"``.

    NVML reports the domain with 8 hex digits for local devices but remote link
    ends sometimes with 4; comparing normalized ids matches them.
    """
    text = bus_id.decode() if isinstance(bus_id, bytes) else bus_id
    text = text.strip().lower()
    domain, sep, rest = text.partition(":")
    if not sep or rest.count(":") != 1:
        return text
    try:
        return f"{int(domain, 16):04x}:{rest}"
    except ValueError:
        return text
