"""cssnn.bench: benchmarks anyone reruns with one command (``python -m cssnn.bench.core``,
``python -m cssnn.bench.system``)."""
