"""Running the JavaScript SDK drivers of `tests/js` under Node, for the SDK tests."""

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
SDKS = ("@moltin/sdk", "@elasticpath/js-sdk")
SCRIPT_TIMEOUT = 60


def node_with_sdks() -> str:
    """The Node binary, once the SDKs are installed; CI installs them, so absence is a failure."""
    missing = [sdk for sdk in SDKS if not (JS_DIR / "node_modules" / sdk).is_dir()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run `npm ci --prefix tests/js`", pytrace=False
        )
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not on PATH; these tests need Node 18+", pytrace=False)
    return binary


async def run_script(node: str, script: str, environment: dict[str, str]) -> Any:
    """Runs `tests/js/<script>` with `environment` added, and parses the JSON it prints."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(JS_DIR / script),
        env={**os.environ, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), SCRIPT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{script} ran for more than {SCRIPT_TIMEOUT}s")
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)
