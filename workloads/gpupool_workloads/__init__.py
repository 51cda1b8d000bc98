"""What runs inside gpupool's pods: the DDP trainer, its launcher, the inference server."""
