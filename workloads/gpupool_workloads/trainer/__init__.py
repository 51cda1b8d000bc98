"""The DDP trainer that gpupool worker pods run (see ``workloads/README.md``)."""
