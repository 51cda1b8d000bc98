"""``python -m gpupool_workloads.bench``: trainer overhead, checkpoint time, serving latency."""
