"""The engine: factor spaces, distributions, constraints, Guidance, solvers and generators."""
