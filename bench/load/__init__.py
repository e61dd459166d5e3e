"""The load test: a class taking a timed test together while half of it trains experiments (issue 19).

`python bench/load/run.py` runs it; see bench/load/README.md.
"""
