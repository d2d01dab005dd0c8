"""
The core of txmr: the job's state and its rules, with no I/O.

Nothing here reads a clock, a file or a socket.  The driver's front doors
(AMP, the seed's HTTP), the inline runner and the tests all feed the same
L{Scheduler} and carry out the typed instructions it returns.
"""
