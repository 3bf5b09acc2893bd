"""cssnn.verif: test infrastructure (testbench drivers, bus and device models, network generators,
whole-payload checks, cocotb tests). Used by tests/ and the benchmarks, not by users."""
