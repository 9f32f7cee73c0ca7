"""Apple Silicon: powermetrics streams and their parsers, and zeus-apple-silicon's IOReport counters."""
