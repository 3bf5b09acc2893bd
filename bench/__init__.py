"""cssnn.bench: benchmarks anyone reruns with one command (``python -m cssnn.bench.core``,
``python -m cssnn.bench.system``, ``python -m cssnn.bench.sparsity``, ``python -m cssnn.bench.sparse``)."""

import sys

from cssnn.extras import MissingExtra


def run(main) -> int:
    """Run a benchmark's ``main``; a missing optional dependency is one line on stderr, exit 2."""
    try:
        return main()
    except MissingExtra as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
