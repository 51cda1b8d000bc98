"""``metav1.LabelSelector`` semantics for a pool's ``spec.nodeSelector``."""

from __future__ import annotations

from collections.abc import Mapping

from gpupool.api.common import LabelSelector


def matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """True when ``labels`` satisfy every term (an empty selector matches everything)."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for term in selector.match_expressions or []:
        present = term.key in labels
        values = term.values or []
        if term.operator == "In" and not (present and labels[term.key] in values):
            return False
        if term.operator == "NotIn" and present and labels[term.key] in values:
            return False
        if term.operator == "Exists" and not present:
            return False
        if term.operator == "DoesNotExist" and present:
            return False
    return True
