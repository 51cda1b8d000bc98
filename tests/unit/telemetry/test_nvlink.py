from __future__ import annotations

import pytest

from gpupool.telemetry.nvlink import normalize_pci_bus_id, nvlink_topology


def test_switch_attached_gpus_form_one_domain_and_others_stay_alone() -> None:
    topology = nvlink_topology(gpu_indices={0, 1, 2, 3}, direct_links={}, switch_attached={0, 1, 2})
    assert topology.peers == {0: (1, 2), 1: (0, 2), 2: (0, 1), 3: ()}
    assert topology.domains == {0: 0, 1: 0, 2: 0, 3: None}


def test_one_sided_links_are_symmetric_and_chains_join_islands() -> None:
    topology = nvlink_topology(
        gpu_indices={0, 1, 2, 3, 4}, direct_links={1: {2}, 3: {2}, 4: {9}}, switch_attached=set()
    )
    assert topology.peers[2] == (1, 3)
    assert topology.domains == {0: None, 1: 1, 2: 1, 3: 1, 4: None}


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (b"00000000:3B:00.0", "0000:3b:00.0"),
        ("0000:3b:00.0", "0000:3b:00.0"),
        (" 00000001:3B:00.0 ", "0001:3b:00.0"),
        ("garbage", "garbage"),
    ],
)
def test_normalize_pci_bus_id(raw: str | bytes, normalized: str) -> None:
    assert normalize_pci_bus_id(raw) == normalized
