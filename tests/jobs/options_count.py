"""
Word count with options: words counted fewer than --min-count times are
left out, and --upper prints the words in capitals.  A module job reads
its options as txmr.options().
"""

import txmr


def configure(parser):
    parser.add_argument("--min-count", type=int, default=1,
                        help="leave out words counted fewer times")
    parser.add_argument("--upper", action="store_true", help="print words in capitals")


def map(filename, line):
    for word in line.lower().split():
        yield word, 1


def combine(word, counts):
    yield word, sum(counts)


def reduce(word, counts):
    options = txmr.options()
    total = sum(counts)
    if total >= options.min_count:
        yield (word.upper() if options.upper else word), total
