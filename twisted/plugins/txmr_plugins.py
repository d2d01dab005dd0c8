"""
twistd plugins: C{twistd txmr-driver} and C{twistd txmr-worker}.

Only wiring lives here; twistd imports every module in this folder when it
lists its plugins, so it must stay cheap to import.
"""

from twisted.application.service import ServiceMaker

driver = ServiceMaker(
    "txmr driver",
    "txmr.tap.driver",
    "Run a txmr MapReduce job for the workers that connect to it.",
    "txmr-driver",
)

worker = ServiceMaker(
    "txmr worker",
    "txmr.tap.worker",
    "Run tasks of a txmr MapReduce driver until its job is over.",
    "txmr-worker",
)
