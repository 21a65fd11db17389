"""The world model: stations, network, workload, random streams and coordination topologies."""
