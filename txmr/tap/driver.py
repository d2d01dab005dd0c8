"""
C{twistd txmr-driver}.
"""

from txmr.driver.options import DriverOptions as Options, make_driver_service as makeService

__all__ = ["Options", "makeService"]
