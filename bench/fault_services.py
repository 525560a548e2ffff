"""What the fault scripts break, each one of their own: a redis-server and a PostgreSQL server on
free loopback ports, and a small tmpfs. Never the shared Redis (6379) or PostgreSQL (5432).

PostgreSQL refuses to run as root, so as root its commands run as the `postgres` user, in a
directory of /tmp that user may enter. tests/runtime/test_database_outage.py and the fleet's
restart phase (bench/fleet.py) restart this same server.
"""

import contextlib
import errno
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import HOST, fail, free_port

START_SECONDS = 30.0


class Unavailable(Exception):
    """This machine cannot produce the fault (no binary, no permission): the script says why."""


class PrivateRedis:
    """`redis-server` without persistence, on a port of its own that survives a restart;
    `freeze` (SIGSTOP) leaves its socket accepting connections that are never answered, as a
    hung server does."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("no redis-server binary")
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self._command = [binary, "--port", str(self.port), "--bind", HOST]
        self._command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(self._command, stdout=log, stderr=log)
        import redis  # the sync client; the bench venv has it, as Keyhouse's dependency

        deadline = time.monotonic() + START_SECONDS
        while True:
            with (
                contextlib.suppress(redis.ConnectionError),
                redis.Redis.from_url(self.url, socket_timeout=1) as connection,
            ):
                connection.ping()
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                fail(f"redis-server did not start; see {self._log}")
            time.sleep(0.02)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: connections reset, the port refuses until `start` again."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's server binaries (Debian's layout, else pg_config's)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_config")
    if found:
        done = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and (Path(done.stdout.strip()) / "initdb").exists():
            return Path(done.stdout.strip())
    raise Unavailable("no PostgreSQL server binaries (initdb, pg_ctl) to start a private server")


class PrivatePostgres:
    """initdb, pg_ctl start and stop, and always gone after `remove`; its port survives a
    restart."""

    def __init__(self, *, max_connections: int = 100, prefix: str = "keyhouse-faults-pg-") -> None:
        self.bin = postgres_bin()
        self.max_connections = max_connections
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                message = "running as root, and no `postgres` user to run PostgreSQL as"
                raise Unavailable(message) from None
        # Not under a 0700 directory of root's: the `postgres` user must enter it.
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@{HOST}:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        as_user: dict[str, Any] = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        with (self.root / "commands.log").open("ab") as log:
            subprocess.run(
                [str(self.bin / command[0]), *command[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.root,
                timeout=60,
                check=True,
                **as_user,
            )

    def init(self) -> None:
        # --no-sync only makes initdb itself quicker; the server runs with fsync on.
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-h {HOST} -p {self.port} -k {self.root}"
        options += f" -c max_connections={self.max_connections}"
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data), "-l", log, "-o", options
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", str(self.data))

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Tmpfs:
    """A tmpfs of `size` bytes mounted at `path` (needs root or CAP_SYS_ADMIN), and a file that
    fills it."""

    def __init__(self, path: Path, size: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size}"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise Unavailable(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        with self._filler.open("ab") as filler:
            try:
                while True:
                    filler.write(b"\0" * 1048576)
                    filler.flush()
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        self._filler.unlink()

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)
