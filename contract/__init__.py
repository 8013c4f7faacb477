"""The contract every layer shares: task configs, table schemas, the dataset layout, estimators.

No numba, no Ray: the orchestrator, the workers and the analysis may all import it, and it
imports none of them.
"""
