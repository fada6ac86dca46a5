"""``make bench``: throughput and latency of the emulator in each serving mode, against a bare
Flask baseline under the same server, plus the cost of large tenants."""
