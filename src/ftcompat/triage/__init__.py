"""Working from a grid: safe pins, upstream bug reports, reproduction scripts, bisection."""
