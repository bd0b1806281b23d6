"""Deterministic (seeded) synthetic data with known truth, for samples, tests and benchmarks.

One module per topic: :mod:`.tomogram`, :mod:`.movie`, :mod:`.lattice`, :mod:`.spectral`,
:mod:`.particles`.
"""
