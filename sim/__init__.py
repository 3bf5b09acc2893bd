"""cssnn.sim: the simulation backends users run (Amaranth simulator and Verilator transports behind the
host driver, Verilog generation and Verilator builds)."""
