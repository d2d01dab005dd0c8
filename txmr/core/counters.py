"""
Counters: C{{group: {name: number}}}, as tasks count them, workers report
them, the scheduler sums them over winning attempts, and runners print them.
"""


def add(counters, name, amount, group="txmr"):
    """
    Add C{amount} to counter C{name} of C{group} in C{counters}.
    """
    names = counters.setdefault(group, {})
    names[name] = names.get(name, 0) + amount


def summed(many):
    """
    The sum of several counter sets (L{add} inlined: the sums run over
    every task at the job's end).
    """
    total = {}
    for counters in many:
        for group, names in counters.items():
            if not names:
                continue
            sums = total.setdefault(group, {})
            for name, value in names.items():
                sums[name] = sums.get(name, 0) + value
    return total


def valid(counters):
    """
    The part of a peer's counters that has their shape: a malformed report
    must not break the sums.
    """
    if not isinstance(counters, dict):
        return {}
    # JSON's own int and float first: one test instead of two isinstance.
    return {
        str(group): {str(name): value for name, value in names.items()
                     if type(value) in _NUMBERS
                     or isinstance(value, _NUMBERS) and not isinstance(value, bool)}
        for group, names in counters.items() if isinstance(names, dict)
    }


_NUMBERS = (int, float)


def lines(counters):
    """
    C{group.name = value} lines, sorted, as the driver logs them and
    C{txmr run} prints them.
    """
    return [f"{group}.{name} = {value}"
            for group, names in sorted(counters.items())
            for name, value in sorted(names.items())]
