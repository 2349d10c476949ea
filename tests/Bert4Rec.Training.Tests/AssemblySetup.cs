// OpenBLAS's thread count is process-wide state that the model switches (one thread while attention rows run in parallel,
// all threads for the large matrix products); two trainings at once in one process would change each other's
// partitioning and break the bitwise determinism some tests check. So this assembly's tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
