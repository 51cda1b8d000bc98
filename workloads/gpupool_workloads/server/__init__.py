"""The HTTP inference server of gpupool InferenceService pods (see ``workloads/README.md``)."""
