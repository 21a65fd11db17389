"""The world model: stations, network, faults, broker, consumers and the coordinators."""
