from gpupool_workloads.trainer.main import main

main()
