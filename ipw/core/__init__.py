"""The contract every layer shares: exception types, the query record and its columns, the one clock, latency definitions and the JSONL reader. Imports nothing else of ipw."""
