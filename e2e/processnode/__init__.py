"""A test-harness kubelet that runs pods' commands as local processes.

For end-to-end tests on the local control plane (``e2e/cluster.sh``): it registers
a few Nodes that kwok does not manage (no ``kwok.x-k8s.io/node`` annotation),
keeps them Ready (status and Lease heartbeats), watches the pods bound to them,
runs each pod's first container's ``command`` + ``args`` as a local process group
with the pod's environment, and reports phases, readiness and exit codes through
the ``pods/status`` API. Graceful deletion sends SIGTERM and waits the pod's grace
period, as a kubelet does.

Because every "pod" shares this host, the pod environment is mapped (see
:mod:`e2e.processnode.pod_process`): cluster DNS names become ``127.0.0.1``,
ports get free host ports (recorded in the pod annotation
``processnode.gpupool.io/ports``), volumes become host directories, and
``python`` is this interpreter.

    python -m e2e.processnode --node proc-0 --node proc-1 --pool cpu --gpus 2
"""
