"""
The data path: running one map or one reduce task over files.

All of it runs in a worker thread (or inline): it reads, computes and
writes, and knows nothing of the network.  The driver hands it a
L{txmr.core.spec.TaskSpec}; the sizes it works in are L{knobs.Knobs}.

The modules, in the order a task's data flows:

  - L{inputs}: the input files, cut into byte-range splits on line
    boundaries, read by a map task in large blocks;
  - L{records}: a map task's input records, by the job's C{INPUT} mode;
  - L{keys}: a key's bytes, its partition, its order, its output text;
  - L{sampling}: the key ranges of a C{TOTAL_ORDER} job;
  - L{mapper}: a map attempt, and its partitioned, combined output;
  - L{chunks}: the format of map output and of spilled runs;
  - L{reducer}: a reduce attempt, grouping within a memory budget;
  - L{output}: the output formats (TSV, JSON lines);
  - L{storage}: input and output URLs (fsspec), compressed input;
  - L{layout}: the names of the files, and their commit by renaming;
  - L{store_output}: the commit of output on a store, which cannot rename;
  - L{run}: one attempt, map or reduce, start to end.

L{knobs} holds the sizes and L{attempt} what every attempt shares
(cancellation, record errors, counters).
"""
