"""
The lock that keeps two runs off one directory.
"""

import fcntl
import os

from twisted.trial import unittest

from txmr.data.layout import LOCK_NAME, DirectoryInUse, lock_directory


class LockTests(unittest.TestCase):
    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, LOCK_NAME)

    def test_second_run_refused_naming_the_first(self):
        held = lock_directory(self.directory, "run one")
        self.addCleanup(held.close)
        e = self.assertRaises(DirectoryInUse, lock_directory, self.directory, "run two")
        self.assertIn("in use by run one", str(e))

    def test_holder_letting_go_between_open_and_lock(self):
        """
        The first run removes its lock file and closes it just after the
        second opened it, before the second locks it: the second must not
        keep a lock on the removed file, or a third run would create a new
        file, lock it too, and run beside it.
        """
        first = lock_directory(self.directory, "run one")
        real_flock = fcntl.flock
        let_go = []

        def flock(f, operation):
            if not let_go:
                let_go.append(True)
                os.unlink(self.path)
                first.close()
            return real_flock(f, operation)

        self.patch(fcntl, "flock", flock)
        second = lock_directory(self.directory, "run two")
        self.addCleanup(second.close)
        self.assertTrue(os.path.samestat(os.fstat(second.fileno()), os.stat(self.path)))
        self.patch(fcntl, "flock", real_flock)
        e = self.assertRaises(DirectoryInUse, lock_directory, self.directory, "run three")
        self.assertIn("in use by run two", str(e))
