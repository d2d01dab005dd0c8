"""
C{MRStep}, as mrjob's: one step's functions, with mrjob's identity mapper
and reducer standing in for those a step leaves out.
"""

TXMR_COMPAT = True

_MAPPER_FUNCS = ("mapper", "mapper_init", "mapper_final", "mapper_cmd", "mapper_pre_filter",
                 "mapper_raw")
_COMBINER_FUNCS = ("combiner", "combiner_init", "combiner_final", "combiner_cmd",
                   "combiner_pre_filter")
_REDUCER_FUNCS = ("reducer", "reducer_init", "reducer_final", "reducer_cmd",
                  "reducer_pre_filter")
_JOB_STEP_FUNC_PARAMS = _MAPPER_FUNCS + _COMBINER_FUNCS + _REDUCER_FUNCS
_JOB_STEP_PARAMS = _JOB_STEP_FUNC_PARAMS + ("jobconf",)


def _IDENTITY_MAPPER(key, value):
    yield key, value


def _IDENTITY_REDUCER(key, values):
    for value in values:
        yield key, value


class StepFailedException(Exception):
    """
    A step failed (raised by mrjob's runners; here for imports only).
    """


class MRStep:
    """
    A step handled by the job's own functions: any of mapper, combiner and
    reducer, with their C{_init}/C{_final}, and C{jobconf}.
    """

    def __init__(self, **kwargs):
        bad = sorted(set(kwargs) - set(_JOB_STEP_PARAMS))
        if bad:
            raise TypeError(f"MRStep() got an unexpected keyword argument {bad[0]!r}")
        if not set(kwargs) & set(_JOB_STEP_FUNC_PARAMS):
            raise ValueError("Step has no mappers and no reducers")
        self.has_explicit_mapper = any(v for k, v in kwargs.items() if k in _MAPPER_FUNCS)
        self.has_explicit_combiner = any(v for k, v in kwargs.items() if k in _COMBINER_FUNCS)
        self.has_explicit_reducer = any(v for k, v in kwargs.items() if k in _REDUCER_FUNCS)
        steps = dict.fromkeys(_JOB_STEP_PARAMS)
        steps.update(kwargs)
        for func, others in (("mapper_cmd", _MAPPER_FUNCS),
                             ("mapper_raw", ("mapper", "mapper_pre_filter")),
                             ("combiner_cmd", _COMBINER_FUNCS), ("reducer_cmd", _REDUCER_FUNCS)):
            if steps[func]:
                for other in others:
                    if other != func and steps[other]:
                        raise ValueError(f"Can't specify both {func} and {other}")
        self._steps = steps

    def __repr__(self):
        given = ", ".join(f"{k}={v!r}" for k, v in self._steps.items() if v is not None)
        return f"{type(self).__name__}({given})"

    def __eq__(self, other):
        return isinstance(other, MRStep) and self._steps == other._steps

    def __getitem__(self, key):
        if key == "mapper" and self._steps["mapper"] is None:
            return _IDENTITY_MAPPER
        if key == "reducer" and self._steps["reducer"] is None and self.has_explicit_reducer:
            return _IDENTITY_REDUCER
        if key == "combiner" and self._steps["combiner"] is None and self.has_explicit_combiner:
            return _IDENTITY_REDUCER
        return self._steps[key]

    def description(self, step_num=0):
        desc = {"type": "streaming"}
        if step_num == 0 or self.has_explicit_mapper or self.has_explicit_combiner:
            desc["mapper"] = self._substep("mapper")
        if self.has_explicit_combiner:
            desc["combiner"] = self._substep("combiner")
        if self.has_explicit_reducer:
            desc["reducer"] = self._substep("reducer")
        if self._steps["mapper_raw"]:
            desc["input_manifest"] = True
        if self._steps["jobconf"]:
            desc["jobconf"] = self._steps["jobconf"]
        return desc

    def _substep(self, kind):
        if self._steps[kind + "_cmd"]:
            return {"type": "command", "command": self._steps[kind + "_cmd"]}
        substep = {"type": "script"}
        if self._steps[kind + "_pre_filter"]:
            substep["pre_filter"] = self._steps[kind + "_pre_filter"]
        return substep
