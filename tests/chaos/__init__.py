"""Chaos and reliability scenarios: faults upstream and on the platforms, replicas, kills,
hostile input. The scenario modules serve both these tests (small, seeded) and
`bench/chaos.py` (full size)."""
