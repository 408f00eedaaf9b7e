"""Dashboard accounts: argon2 passwords, invitations, login sessions and login rate limits.

A login session is a random id in the (signed, HttpOnly) Flask session cookie and a Redis
key with an idle expiry; logging out or deactivating an account deletes the key, so a
copied cookie stops working at once.

Every login costs exactly one argon2 verification, whether the email exists or not (an
unknown email is checked against a dummy hash made once per process), so timing does not
tell which accounts exist. Tries are counted in Redis *before* the password is checked,
atomically (``LoginLimiter``): per account across every address, with a delay that doubles
after a few failures up to a cap (a delay, never a lock); per client address in a window;
and per trusted device (a browser that has logged in to that account before, known by a
signed cookie), which skips the account and address limits so that nobody can lock the
program's coordinators out by failing on purpose.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.core.errors import HotlineError
from hotline.models import Role, User, utcnow

#: NIST SP 800-63B: at least 8; a shared dashboard account deserves more.
MIN_PASSWORD_LENGTH = 12
#: How long an invitation link works.
INVITE_DAYS = 7
#: Tries one account gets from anywhere before each further try must wait (any address).
MAX_FAILURES_PER_ACCOUNT = 5
#: The first wait after those, doubled after each further failure up to the cap: delays,
#: never a permanent lock, so an attacker cannot keep a coordinator out for good.
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 15 * 60
#: An account's failures are forgotten this long after its last try.
ACCOUNT_MEMORY_SECONDS = 24 * 3600
#: Tries one client address gets in the window (many emails: password spraying).
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW_SECONDS = 15 * 60
#: Tries a trusted device (a browser that logged in to the account) gets before it is
#: trusted no more and waits like anyone else; forgotten after ACCOUNT_MEMORY_SECONDS.
MAX_FAILURES_PER_DEVICE = 5
#: A device stays trusted this long after its last good login.
DEVICE_DAYS = 90
#: A login session ends after this long without a request.
SESSION_IDLE_SECONDS = 8 * 3600
_PREFIX = "hotline:dashboard:"


class AccountError(HotlineError, ValueError):
    """An account change or login was refused; the message is safe to show."""


def hasher(test_mode: bool = False) -> PasswordHasher:
    """argon2id with RFC 9106's low-memory parameters (cheapest ones under HOTLINE_ENV=test)."""
    return PasswordHasher.from_parameters(profiles.CHEAPEST if test_mode
                                          else profiles.RFC_9106_LOW_MEMORY)


def normalize_email(email: str) -> str:
    """Trimmed, lower-case; refuses what is plainly not an address."""
    email = (email or "").strip().lower()
    local, _, domain = email.partition("@")
    if (not local or "." not in domain or len(email) > 254
            or any(c.isspace() or not c.isprintable() for c in email)):  # NUL: PostgreSQL refuses
        raise AccountError("enter a valid email address")
    return email


def check_password(password: str, confirm: str | None = None) -> None:
    """Refuse a short password or a confirmation that does not match."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if confirm is not None and confirm != password:
        raise AccountError("the two passwords differ")


def find(session: Session, email: str) -> User | None:
    """The account with this email, if any."""
    if "\x00" in email:  # no address has one, and PostgreSQL refuses it in any string
        return None
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def create(session: Session, ph: PasswordHasher, email: str, role: str,
           password: str | None = None) -> tuple[User, str | None]:
    """Create an account with a password, or with an invitation: returns (user, token)."""
    email = normalize_email(email)
    if role not in {r.value for r in Role}:
        raise AccountError("role must be coordinator, admin or referrer")
    if find(session, email) is not None:
        raise AccountError("an account with this email already exists")
    user = User(email=email, role=role, active=True)
    token = None
    if password is None:
        token = _invite(user)
    else:
        check_password(password)
        user.password_hash = ph.hash(password)
    session.add(user)
    session.commit()
    return user, token


def _invite(user: User) -> str:
    token = secrets.token_urlsafe(32)
    user.invite_hash = _digest(token)
    user.invite_expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    return token


def reinvite(session: Session, user: User) -> str:
    """A fresh invitation link for an account (its password stops working)."""
    token = _invite(user)
    user.password_hash = None
    session.commit()
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invited(session: Session, token: str) -> User | None:
    """The active account this unexpired invitation token belongs to."""
    user = session.scalar(select(User).where(User.invite_hash == _digest(token or "")))
    if user is None or not user.active or _expired(user.invite_expires_at):
        return None
    return user


def _expired(moment: datetime | None) -> bool:
    if moment is None:
        return True
    if moment.tzinfo is None:  # SQLite returns naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment <= utcnow()


def accept_invite(session: Session, ph: PasswordHasher, user: User, password: str,
                  confirm: str) -> None:
    """Set the password of an invited account; the link stops working."""
    check_password(password, confirm)
    user.password_hash = ph.hash(password)
    user.invite_hash = None
    user.invite_expires_at = None
    session.commit()


#: Verified against when the email is unknown, so timing does not tell which emails exist.
_DUMMY_PASSWORD = "not-a-real-password-for-timing"
#: One dummy hash per argon2 parameter set, made once per process (``warm_up``): hashing it
#: per login would make an unknown email cost two argon2 runs and a real one one.
_dummy_hashes: dict[object, str] = {}


def dummy_hash(ph: PasswordHasher) -> str:
    """A hash with ``ph``'s parameters, to verify against when there is no real one."""
    key = (ph.type, ph.time_cost, ph.memory_cost, ph.parallelism, ph.hash_len, ph.salt_len)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = ph.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[key]


def warm_up(ph: PasswordHasher) -> None:
    """Make the dummy hash at start-up, so that even the first unknown email costs the same."""
    dummy_hash(ph)


def authenticate(session: Session, ph: PasswordHasher, email: str, password: str) -> User | None:
    """The active account for these credentials, or None.

    Exactly one argon2 verification on every path: unknown email, invited account without
    a password, deactivated account, wrong password, right password.
    """
    user = find(session, email or "")
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        ph.verify(stored or dummy_hash(ph), password or "")
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or not user.active:
        return None
    if ph.check_needs_rehash(stored):
        user.password_hash = ph.hash(password)
    user.last_login_at = utcnow()
    session.commit()
    return user


def count_admins(session: Session) -> int:
    """Active admins: the last one may not be demoted or deactivated."""
    return session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.active.is_(True))) or 0


#: One atomic step per try (KEYS: account, address, device or ""; ARGV: now, then the
#: limits). A trusted device under its own limit goes straight to the password check;
#: otherwise the address, then the account, may refuse; an allowed try is counted at once,
#: so concurrent tries cannot all slip past the limit while the slow check runs. An allowed
#: try also returns what its failure would mean: the wait it starts (until, and which limit)
#: and the tries left before a wait, so the login page can warn before the last free one.
_ATTEMPT = """
local now = tonumber(ARGV[1])
if KEYS[3] ~= '' then
  if tonumber(redis.call('GET', KEYS[3]) or '0') < tonumber(ARGV[8]) then
    local used = redis.call('INCR', KEYS[3])
    redis.call('EXPIRE', KEYS[3], ARGV[5])
    return {'device', 0, tonumber(ARGV[8]) - used, ''}
  end
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[6]) then
  return {'address', now + math.max(redis.call('TTL', KEYS[2]), 1)}
end
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < wait_until then
  return {'account', wait_until}
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[2])
local wait, limit = 0, ''
if n >= free then
  local delay = math.min(tonumber(ARGV[3]) * 2 ^ (n - free), tonumber(ARGV[4]))
  wait, limit = math.floor(now + delay), 'account'
  redis.call('HSET', KEYS[1], 'until', wait)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
local from_address = redis.call('INCR', KEYS[2])
if from_address == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
if wait == 0 and from_address >= tonumber(ARGV[6]) then
  wait, limit = now + math.max(redis.call('TTL', KEYS[2]), 1), 'address'
end
return {'counted', wait, math.min(free - n, tonumber(ARGV[6]) - from_address), limit}
"""
#: A good login's try is taken back from its address (KEYS: account, address); a key that
#: expired meanwhile is not recreated (it would have no expiry).
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""


def clock() -> float:
    """Now, in seconds since the epoch (hotline.core.clock: tests move it on)."""
    return utcnow().timestamp()


@dataclass(frozen=True)
class Attempt:
    """The verdict on one login try, given before the password is checked.

    ``allowed`` tries were counted; a refused one says which limit (``"account"`` or
    ``"address"``) and until when (``until``, seconds since the epoch). ``by_device``: let
    through by the trusted-device limit (the account and address limits were skipped).
    An allowed try that fails: ``tries_left`` further tries before a wait, and when this
    very failure starts one, ``limit`` and ``until`` say which and until when.
    """

    allowed: bool
    by_device: bool = False
    limit: str = ""
    until: int = 0
    tries_left: int | None = None

    def seconds_left(self) -> int:
        """Seconds until another try is allowed (at least 1)."""
        return max(int(self.until - clock()), 1)


class LoginLimiter:
    """Login tries counted in Redis before the password is checked (no email in Redis).

    Three counters: per account (every address together; after MAX_FAILURES_PER_ACCOUNT
    tries each further one waits BACKOFF_FIRST_SECONDS, doubling, at most
    BACKOFF_MAX_SECONDS), per client address (MAX_FAILURES_PER_ADDRESS in
    FAILURE_WINDOW_SECONDS), and per trusted device (MAX_FAILURES_PER_DEVICE; such a
    device skips the other two). A good login takes its own try back.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    @staticmethod
    def _keys(email: str, address: str, device: str | None) -> list[str]:
        return [f"{_PREFIX}fail:acct:{_digest(email.strip().lower())}",
                f"{_PREFIX}fail:addr:{_digest(address)}",
                f"{_PREFIX}fail:device:{_digest(device)}" if device else ""]

    def attempt(self, email: str, address: str, device: str | None = None) -> Attempt:
        """Count a try for ``email`` from ``address`` (and a trusted ``device`` id), or refuse."""
        verdict, until, *more = self._attempt(
            keys=self._keys(email, address, device),
            args=[int(clock()), MAX_FAILURES_PER_ACCOUNT, BACKOFF_FIRST_SECONDS,
                  BACKOFF_MAX_SECONDS, ACCOUNT_MEMORY_SECONDS, MAX_FAILURES_PER_ADDRESS,
                  FAILURE_WINDOW_SECONDS, MAX_FAILURES_PER_DEVICE])
        verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
        if verdict in ("device", "counted"):
            left, limit = more
            limit = limit.decode() if isinstance(limit, bytes) else limit
            return Attempt(True, by_device=verdict == "device", limit=limit,
                           until=int(until), tries_left=max(int(left), 0))
        return Attempt(False, limit=verdict, until=int(until))

    def succeeded(self, attempt: Attempt, email: str, address: str,
                  device: str | None = None) -> None:
        """A good login: forget its account's failures (or its device's) and its try.

        A login through a trusted device clears only that device's count: the account's
        backoff against everyone else stays, or each good login would hand an attacker
        elsewhere a fresh set of tries.
        """
        account, addr, device_key = self._keys(email, address, device)
        if attempt.by_device:
            self.redis.delete(device_key)
            return
        self._succeeded(keys=[account, addr])

    def forgive(self, email: str) -> None:
        """Clear an account's backoff (the person proved who they are another way)."""
        self.redis.delete(self._keys(email, "", None)[0])


class LoginSessions:
    """Server-side login sessions: id -> user id in Redis, with an idle expiry."""

    def __init__(self, redis: Redis, idle_seconds: int = SESSION_IDLE_SECONDS) -> None:
        self.redis = redis
        self.idle = idle_seconds

    def start(self, user_id: int) -> str:
        """A new session id for ``user_id``."""
        sid = secrets.token_urlsafe(32)
        pipe = self.redis.pipeline()
        pipe.set(f"{_PREFIX}session:{sid}", user_id, ex=self.idle)
        pipe.sadd(self._set(user_id), sid)
        # The set lives as long as its newest session: every key in Redis expires.
        pipe.expire(self._set(user_id), self.idle)
        pipe.execute()
        return sid

    @staticmethod
    def _set(user_id: int | str) -> str:
        """The key of an account's set of session ids (for ``end_all``)."""
        return f"{_PREFIX}user-sessions:{user_id}"

    def user_id(self, sid: str | None) -> int | None:
        """The user of a live session (its expiry is pushed back), or None."""
        if not sid:
            return None
        key = f"{_PREFIX}session:{sid}"
        value = self.redis.get(key)
        if value is None:
            return None
        pipe = self.redis.pipeline(transaction=False)
        pipe.expire(key, self.idle)
        pipe.expire(self._set(int(value)), self.idle)  # outlives every session it lists
        pipe.execute()
        return int(value)

    def end(self, sid: str | None) -> None:
        """Log one session out."""
        if sid:
            self.redis.delete(f"{_PREFIX}session:{sid}")

    def end_all(self, user_id: int) -> None:
        """Log every session of an account out (deactivated, password reset)."""
        key = self._set(user_id)
        sids = [s.decode() if isinstance(s, bytes) else s for s in self.redis.smembers(key)]
        if sids:
            self.redis.delete(*[f"{_PREFIX}session:{sid}" for sid in sids])
        self.redis.delete(key)
