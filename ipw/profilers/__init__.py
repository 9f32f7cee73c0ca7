"""The measurement API over the devices: measurements and windows (with scopes and bounds), the
profiler that opens them, the background sampler, and per-query attribution under overlap."""
