"""Running simulations: tasks, executors, and raw records kept on disk for sweeps."""
