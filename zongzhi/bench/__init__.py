"""The benchmarks of ``manage.py bench``: one module per workload, each with ``run``."""
