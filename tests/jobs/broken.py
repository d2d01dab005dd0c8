"""
A job module that cannot even be imported.
"""

raise RuntimeError("this job module is broken")
