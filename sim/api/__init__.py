"""The Python API: run a comparison or a sweep, and read and write their folders."""
