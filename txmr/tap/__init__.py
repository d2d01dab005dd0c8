"""
The modules twistd's plugins point at: each holds an C{Options} and a
C{makeService}, as twistd expects.
"""
