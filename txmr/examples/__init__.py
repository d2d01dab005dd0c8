"""
Example jobs.
"""
