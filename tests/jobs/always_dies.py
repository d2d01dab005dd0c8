"""
Every map call kills its process.
"""

import os


def map(filename, line):
    os._exit(3)


def reduce(key, values):
    return ()
