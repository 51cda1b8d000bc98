from gpupool_workloads.bench.main import main

main()
