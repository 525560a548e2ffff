"""A redis-server of the test's own, on a free loopback port: the tests that freeze or kill
Redis never touch the suite's shared one."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis

from .conftest import free_port

START_SECONDS = 10.0


class PrivateRedis:
    """`redis-server` without persistence, started and stopped by the test; `freeze` (SIGSTOP)
    leaves its socket accepting connections that are never answered, as a hung server does."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "no redis-server binary to start a private Redis"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self._command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.start()

    def start(self) -> None:
        """Starts it (again, after `stop`) on its port."""
        self.process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        self._wait_answering()

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as connection:
                    connection.ping()
                    return
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
