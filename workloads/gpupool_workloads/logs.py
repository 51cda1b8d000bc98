"""One log format for every workload process: readable ``key=value`` lines."""

from __future__ import annotations

import logging
import sys


def configure_logging(component: str, *, rank: int | None = None) -> None:
    where = f"{component}[rank={rank}]" if rank is not None else component
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {where} %(message)s",
        force=True,
    )
