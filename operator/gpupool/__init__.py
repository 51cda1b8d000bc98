"""gpupool: pooled GPUs for distributed PyTorch training and model serving on Kubernetes."""

__version__ = "0.1.0"
