"""The serving regime: N queries in flight against a server, or batches on a local engine (see
:mod:`ipw.run.serving.executor`)."""
