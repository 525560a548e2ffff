"""The schema fuzz test's hooks for Schemathesis's own command line, which loads a module named
by `SCHEMATHESIS_HOOKS`: from the checkout's root,

    SCHEMATHESIS_HOOKS=tests.fuzz_cli .venv/bin/schemathesis run URL/openapi.json --checks all …

so that a run against a live server is told what `tests/test_schema_fuzzing.py` tells it (see
`tests/fuzz_hooks.py`), from what that server answers during the run.
"""

from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from tests import fuzz_hooks

fuzz_hooks.install(GLOBAL_HOOK_DISPATCHER, seeds={})
