from gpupool_workloads.server.main import main

main()
