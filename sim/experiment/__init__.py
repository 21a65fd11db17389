"""Running experiments: single runs, replications, sweeps, executors and run folders."""
