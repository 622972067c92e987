"""How a network runs on this machine: hardware facts (`hardware`), one execution-path description applied in one
place (`path`), compilation with its fallback (`compile`), and the automatic choice with its probe (`choice`).

Training, the tools, the explorer and the benchmarks all go through it; it imports nothing above it.
"""
