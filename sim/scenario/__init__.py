"""The scenario language: typed models, distributions, loading with clear errors, JSON Schema."""
