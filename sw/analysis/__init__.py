"""cssnn.sw.analysis: accuracy, agreement and operation counts of converted networks; T sweeps; the
steps-to-agreement study."""
