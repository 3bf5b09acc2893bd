"""cssnn.sw.spec: the contract in pure NumPy (layers, the integer network and its file format, the golden model).

Imports no other cssnn layer: docs/ARCHITECTURE.md.
"""
