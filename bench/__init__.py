"""LeadLedger's benchmarks: `make bench` (python -m bench.run). See bench/registry.py to add one."""
