"""
What a run removes from its directories, and what it never touches.
"""

import os

from twisted.trial import unittest

from txmr.data.layout import remove_attempt_files, remove_job_files, write_atomically


class RemovalTests(unittest.TestCase):
    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(os.path.join(self.directory, ".txmr-attempt-5"))
        with open(os.path.join(self.directory, ".txmr-attempt-5", "mr-0-1"), "w") as f:
            f.write("a seed worker's partition\n")
        for name in ("mr-0-0", "out-1", ".mr-0-0.attempt-3.tmp", ".out-1.attempt-9.tmp.spill-0",
                     "notes.txt", "out-x", "out-1.bak", ".txmr-journal.sqlite"):
            with open(os.path.join(self.directory, name), "w") as f:
                f.write("x\n")

    def left(self):
        return sorted(os.listdir(self.directory))

    def test_attempt_files_of_a_dead_run(self):
        """
        A resumed run removes what the dead one's attempts left, its seed
        workers' directories too, and keeps committed files.
        """
        remove_attempt_files(self.directory)
        self.assertEqual(self.left(), [".txmr-journal.sqlite", "mr-0-0", "notes.txt", "out-1",
                                       "out-1.bak", "out-x"])

    def test_job_files_are_named_when_removed(self):
        removed = remove_job_files(self.directory, keep_journal=True)
        self.assertEqual(sorted(removed), [".mr-0-0.attempt-3.tmp",
                                           ".out-1.attempt-9.tmp.spill-0", ".txmr-attempt-5",
                                           "mr-0-0", "out-1"])
        self.assertEqual(self.left(), [".txmr-journal.sqlite", "notes.txt", "out-1.bak", "out-x"],
                         "nothing but a run's own names")


class WriteAtomicallyTests(unittest.TestCase):
    def test_a_planted_symbolic_link_is_replaced_not_followed(self):
        """
        The port and summary files are written beside themselves through a
        name mkstemp makes, then renamed over: a symbolic link planted at
        the path is replaced, and the file it points to is never written.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        victim = os.path.join(directory, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        path = os.path.join(directory, "summary.json")
        os.symlink(victim, path)
        write_atomically(path, "{}\n")
        self.assertFalse(os.path.islink(path))
        with open(path) as f:
            self.assertEqual(f.read(), "{}\n")
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(sorted(os.listdir(directory)), ["summary.json", "victim"])
