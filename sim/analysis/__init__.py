"""Statistics and plots computed from run records; never imports the simulation engine."""
