"""
txmr's compatible surface of mrjob: C{mrjob.job.MRJob}, C{mrjob.step.MRStep}
and C{mrjob.protocol}, as much of them as a job file uses when txmr runs it
(L{txmr.compat.ensure_mrjob} gives these modules mrjob's names only when
the real package does not import).  Runners, Hadoop, EMR and Spark steps
are not here: C{txmr run FILE} is the runner.
"""

TXMR_COMPAT = True
__version__ = "0.7.4+txmr"
