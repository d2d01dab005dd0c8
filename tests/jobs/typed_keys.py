"""
A test job whose keys Python finds equal but JSON writes apart (1, 1.0,
True; 0 and -0.0), or, with --mixed, only the key 7 and the string "7".
"""

WORDS = {"a": 1, "b": 1.0, "c": True, "f": -0.0, "g": 0, "h": [1, 2.0], "i": [1.0, 2],
         "d": 7, "e": "7"}


def configure(parser):
    parser.add_argument("--mixed", action="store_true")


def map(filename, line):
    from txmr import options

    for word in line.split():
        if (word in "de") != options().mixed:
            continue
        if word in WORDS:
            yield WORDS[word], 1


def reduce(key, values):
    yield key, sum(values)
