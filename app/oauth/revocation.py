"""Revoked tokens (RFC 7009), disabled clients and deleted customers, as every worker sees them.

A revocation is a row: one token by its `jti`, every token of a subject (a client, a
customer) issued up to a cutoff, or every customer token of a shopper made before their
credentials last changed (`credentials`: tokens carry the credential epoch they were issued in,
and those of an earlier epoch are refused; app/customers/credentials.py says why a time cutoff
would not do there). A row lives only as long as a token it refuses could still be
valid; then it is purged, so the table never grows beyond the tokens alive.

Each worker keeps all live rows in memory, so checking a token costs dictionary lookups, never
a database round trip, and reads the rows it has not seen yet (`poll`) whenever a write is
announced (a push, app/runtime/change_feed.py: every worker hears it within milliseconds), and
otherwise every `change_poll_seconds` (five by default) as a fallback for a lost message. Without
a push (on SQLite, or while the push is down) it polls every `revocation_poll_seconds` (a
quarter second), as before pushes existed. `tests/oauth/test_revocation_workers.py` and
`tests/oauth/test_change_push.py` measure the delay across two worker processes. Other
per-worker copies of shared rows ride the same poll as its followers: the key ring re-reads the
signing keys when one was added or announced, so a rotated-in key is published everywhere as
fast.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request

from app.observability import metrics
from app.runtime.changes import announce
from app.runtime.db import Base, Database, is_unavailable, utcnow

logger = logging.getLogger("keyhouse.revocation")

# A row outlives its last token by a margin, for workers whose clocks differ a little.
PURGE_MARGIN_SECONDS = 60
PURGE_EVERY_SECONDS = 60.0
GAP_PATIENCE_SECONDS = 10.0
# At start-up, rows this far below the highest id are taken as possibly still in flight.
STARTUP_LOOKBACK_IDS = 1000

# `account_member` and `membership`: account tokens of a member, or of one of their accounts;
# `password_profile`: account tokens of a login through that (deleted) profile.
RevocationKind = Literal[
    "token",
    "client",
    "customer",
    "credentials",
    "account_member",
    "membership",
    "password_profile",
]
SubjectKind = Literal["client", "customer", "account_member", "membership", "password_profile"]


class Revocation(Base):
    __tablename__ = "revocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # A token's `jti`, a client id, a customer id, an account member id, a membership id or a
    # password profile id.
    value: Mapped[str] = mapped_column(String(64))
    # For subjects: tokens issued (`iat`) at or before this epoch second are refused.
    issued_before: Mapped[int | None]
    # For `credentials`: customer tokens of an epoch below this one are refused.
    credential_epoch: Mapped[int | None]
    # For subjects: one token (`jti`) spared, the one a shopper changed their password with.
    spared_token_id: Mapped[str | None] = mapped_column(String(64))
    # Once every token this row could refuse has expired, the row is purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


announce(Revocation, "revocation")


def revoke_token(session: AsyncSession, *, token_id: str, expires_at: int) -> Revocation:
    """Refuses one token (by `jti`) from now on; the row goes once the token has expired."""
    revocation = Revocation(
        kind="token",
        value=token_id,
        issued_before=None,
        expires_at=_epoch_to_datetime(expires_at + PURGE_MARGIN_SECONDS),
    )
    session.add(revocation)
    return revocation


def revoke_subject(
    session: AsyncSession,
    *,
    kind: SubjectKind,
    subject: str,
    max_token_lifetime: int,
    issuing_lag_seconds: float = 0,
    spared_token_id: str | None = None,
) -> Revocation:
    """Refuses every token of a client or customer issued up to now, but `spared_token_id`.

    `issuing_lag_seconds` covers workers that may still issue for the subject for a moment
    (they trust their client cache that long): their tokens are refused too.
    """
    now = time.time()
    revocation = Revocation(
        kind=kind,
        value=subject,
        # `iat` is whole seconds: every token issued before `now + lag` has `iat` at most this.
        issued_before=math.floor(now + issuing_lag_seconds),
        spared_token_id=spared_token_id,
        expires_at=_epoch_to_datetime(
            now + issuing_lag_seconds + max_token_lifetime + PURGE_MARGIN_SECONDS
        ),
    )
    session.add(revocation)
    return revocation


def revoke_credentials(
    session: AsyncSession,
    *,
    subject: str,
    epoch: int,
    max_token_lifetime: int,
    spared_token_id: str | None = None,
) -> Revocation:
    """Refuses every token of a customer or account member (`subject`, their id) from a
    credential epoch below `epoch`, but
    `spared_token_id`. The row lives as long as a token issued up to a minute from now could:
    a login that read the old credentials may still be signing its token."""
    revocation = Revocation(
        kind="credentials",
        value=subject,
        issued_before=None,
        credential_epoch=epoch,
        spared_token_id=spared_token_id,
        expires_at=_epoch_to_datetime(time.time() + max_token_lifetime + 2 * PURGE_MARGIN_SECONDS),
    )
    session.add(revocation)
    return revocation


def _epoch_to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RevocationList:
    """This worker's copy of every live revocation, kept fresh by polling the table.

    Polling reads the rows with ids above a floor below which every id has been seen. On
    PostgreSQL ids are handed out before commit, so a row may appear after rows with higher
    ids; ids not seen yet stay above the floor until they appear, or for `GAP_PATIENCE_SECONDS`
    if their transaction rolled back and they never will.
    """

    def __init__(
        self,
        database: Database,
        *,
        poll_seconds: float,
        followers: Sequence[Callable[[AsyncSession], Awaitable[None]]] = (),
        reads: Database | None = None,
    ) -> None:
        self._database = database  # for the purge, a write: a failing disk is noticed there
        self._reads = reads or database  # for the polls (a `background` one, db.py says why)
        self._poll_seconds = poll_seconds
        self._followers = followers  # each called with the poll's session, after the poll
        self._tokens: dict[str, float] = {}  # jti → when the row may be forgotten
        # (kind, subject) → (cutoff, forget at, the one token spared if any)
        self._subjects: dict[tuple[str, str], tuple[int, float, str | None]] = {}
        self._floor = 0
        self._seen_above_floor: set[int] = set()
        self._gaps: dict[int, float] = {}  # missing id → when first missed
        self._task: asyncio.Task[None] | None = None
        self._purged_at = time.monotonic()
        self._wakeup = asyncio.Event()
        self._pushed: Callable[[], bool] = lambda: False
        self._pushed_poll_seconds = poll_seconds

    def pushed_by(self, connected: Callable[[], bool], *, poll_seconds: float) -> None:
        """While `connected()`, writes are announced (`nudge`), so the table is read only every
        `poll_seconds`, in case a message was lost; otherwise at the usual pace."""
        self._pushed = connected
        self._pushed_poll_seconds = poll_seconds

    def nudge(self) -> None:
        """Something was written elsewhere (or may have been): read the table now."""
        self._wakeup.set()

    def is_revoked(
        self,
        token_id: str,
        subject_kind: str,
        subject: str,
        issued_at: int,
        credential_epoch: int | None = None,
    ) -> bool:
        """Whether a token is refused; `credential_epoch` is a customer token's."""
        if token_id in self._tokens:
            return True
        revoked = self._subjects.get((subject_kind, subject))
        if revoked is not None and issued_at <= revoked[0] and token_id != revoked[2]:
            return True
        if credential_epoch is None:
            return False
        current = self._subjects.get(("credentials", subject))
        return current is not None and credential_epoch < current[0] and token_id != current[2]

    def counts(self) -> dict[str, int]:
        """Revocations in force, by kind (for the metrics)."""
        counts = dict.fromkeys(get_args(RevocationKind), 0)
        counts["token"] = len(self._tokens)
        for kind, _subject in self._subjects:
            counts[kind] += 1
        return counts

    def apply(self, revocation: Revocation) -> None:
        """Takes a row into account at once (the worker that wrote it needs no poll)."""
        forget_at = revocation.expires_at.timestamp()
        if revocation.kind == "token":
            self._tokens[revocation.value] = forget_at
            return
        key = (revocation.kind, revocation.value)
        # A credentials row's epoch orders its rows as a cutoff orders a subject's.
        cutoff = revocation.credential_epoch or revocation.issued_before or 0
        spared = revocation.spared_token_id
        known = self._subjects.get(key)
        # The latest cutoff covers every earlier one (a token it spares was valid when it was
        # made). Rows of the same second, in any order: a token is spared only if all spare it.
        if known is None or known[0] < cutoff:
            self._subjects[key] = (cutoff, forget_at, spared)
        elif known[0] == cutoff and known[2] != spared:
            self._subjects[key] = (cutoff, max(known[1], forget_at), None)

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._keep_fresh(), name="revocation-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def load(self) -> None:
        """Reads every live row; ids just below the highest may still be in flight."""
        async with self._reads.sessions() as session:
            highest = await session.scalar(select(func.max(Revocation.id))) or 0
            live = select(Revocation).where(Revocation.expires_at > utcnow())
            rows = list(await session.scalars(live))
        for row in rows:
            self.apply(row)
        self._floor = max(0, highest - STARTUP_LOOKBACK_IDS)
        self._seen_above_floor = {row.id for row in rows if row.id > self._floor}

    async def poll(self) -> None:
        """Reads rows this worker has not seen yet."""
        query = (
            select(Revocation)
            .where(Revocation.id > self._floor, Revocation.expires_at > utcnow())
            .order_by(Revocation.id)
        )
        async with self._reads.sessions() as session:
            rows = list(await session.scalars(query))
            for follow in self._followers:
                await follow(session)
        for row in rows:
            if row.id not in self._seen_above_floor:
                self.apply(row)
                self._seen_above_floor.add(row.id)
        self._advance_floor()

    def _advance_floor(self) -> None:
        if not self._seen_above_floor:
            return
        now = time.monotonic()
        highest = max(self._seen_above_floor)
        for missing in range(self._floor + 1, highest):
            if missing not in self._seen_above_floor:
                self._gaps.setdefault(missing, now)
        while self._floor < highest:
            following = self._floor + 1
            given_up = now - self._gaps.get(following, now) >= GAP_PATIENCE_SECONDS
            if following not in self._seen_above_floor and not given_up:
                break
            self._seen_above_floor.discard(following)
            self._gaps.pop(following, None)
            self._floor = following

    async def _keep_fresh(self) -> None:
        away_since: float | None = None  # while the database is away: one line, not 4 a second
        failed = False
        while True:
            # After a failed read, at the usual pace: a push heard meanwhile was not read.
            pushed = self._pushed() and not failed
            interval = self._pushed_poll_seconds if pushed else self._poll_seconds
            # Not `asyncio.wait_for`: a nudge at the moment the worker stops would end the wait
            # and swallow the cancellation (Python 3.11), and the shutdown would wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wakeup.wait()
            self._wakeup.clear()  # before reading: a nudge from now on is for rows not read yet
            try:
                await self.poll()
                if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
                    await self.purge()
            except Exception as error:  # try again at the next poll, whatever it was
                failed = True
                if not is_unavailable(error):
                    logger.warning("could not refresh the revocation list", exc_info=True)
                elif away_since is None:
                    away_since = time.monotonic()
                    logger.warning("revocation list: database unavailable; polling on")
                continue
            failed = False
            if away_since is not None:
                away = time.monotonic() - away_since
                logger.info("revocation list: database back after %.1f s", away)
                away_since = None

    async def purge(self) -> None:
        """Forgets, here and in the table, revocations whose tokens have all expired."""
        self._purged_at = time.monotonic()
        now = time.time()
        self._tokens = {jti: until for jti, until in self._tokens.items() if until > now}
        self._subjects = {key: kept for key, kept in self._subjects.items() if kept[1] > now}
        async with self._database.sessions() as session:
            await session.execute(delete(Revocation).where(Revocation.expires_at <= utcnow()))
            await session.commit()


def apply_revocation(
    request: Request, revocation: Revocation, *, counted_as: str | None = None
) -> None:
    """A revocation this worker has just committed: it refuses the tokens at once, the other
    workers when the change reaches them (the push, or their next poll). The revocations metric
    counts it under its kind, or `counted_as` (the customer routes count a shopper's
    `credentials` row as `customer`, as they did before that kind existed)."""
    revocations: RevocationList = request.app.state.revocations
    revocations.apply(revocation)
    metrics.revoked(counted_as or revocation.kind)
