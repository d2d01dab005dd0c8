"""
C{twistd txmr-driver}.
"""

from txmr.service import DriverOptions as Options, make_driver_service as makeService

__all__ = ["Options", "makeService"]
