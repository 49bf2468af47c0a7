"""`make bench`: many concurrent simulated calls through the whole platform, measured.

Entry points: ``python -m sim.bench`` and ``frontdesk bench``; see docs/bench.md.
"""
