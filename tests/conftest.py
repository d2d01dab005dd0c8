"""
Under pytest, run in a scratch directory: trial runs tests in _trial_temp,
and the TestCases' mktemp() paths are relative to the working directory.
"""

import os
import tempfile


def pytest_configure(config):
    os.chdir(tempfile.mkdtemp(prefix="txmr-pytest-"))
