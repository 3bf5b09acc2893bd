"""cssnn: Canonic Signed Spike neural networks on FPGAs."""
__version__ = "0.1.0"
