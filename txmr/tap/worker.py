"""
C{twistd txmr-worker}.
"""

from txmr.worker.options import WorkerOptions as Options, make_worker_service as makeService

__all__ = ["Options", "makeService"]
