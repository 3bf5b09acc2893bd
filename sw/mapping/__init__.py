"""cssnn.sw.mapping: a network onto the hardware (placement, schedule, memory images, sizing, fit rules, ideal
cycle counts). Above both the spec and the gateware definitions, below the host side."""
