"""Accounts: first-run setup, sign-in and sign-out, passwords, roles, and personal API tokens (stored as hashes)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import ApiToken, Role, User, UserSession

MIN_PASSWORD = 10
# The rule as people read it, shown beside every new-password field before anyone fails it.
PASSWORD_RULE = (
    f"At least {MIN_PASSWORD} characters and hard to guess: not your email address, a common password, a word "
    "or a name, nor a pattern such as aaaa, abcabc, 12345 or qwerty. A few unrelated words make a good one."
)
ZXCVBN_MAX_LENGTH = 72
# zxcvbn's score 3: about 10^8 guesses or more. Below are common passwords, words and names, keyboard walks,
# repeats and sequences, dates, and the account's own email.
MIN_PASSWORD_SCORE = 3
SERVICE_WORDS = ["batch", "batches", "processor", "openai"]
TOKEN_PREFIX = "bp_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Checked against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def needs_setup() -> bool:
    """True on a fresh install: no account exists yet."""
    return db.session.scalar(select(func.count()).select_from(User)) == 0


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def create_user(email: str, password: str, *, role: str = Role.MEMBER) -> User:
    """Create an account; raises ValidationFailed (bad email/password) or Conflict (email taken)."""
    email = normalise_email(email)
    problems = _password_problems(password, email)
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        problems.append({"field": "email", "message": "enter a valid email address"})
    if role not in (Role.ADMIN, Role.MEMBER):
        problems.append({"field": "role", "message": "role must be admin or member"})
    if problems:
        raise ValidationFailed("the account details are not valid", details=problems)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"an account for {email} already exists")
    user = User(email=email, password_hash=_hash(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def create_first_admin(email: str, password: str) -> User:
    """The one-time setup: only while no account exists."""
    if not needs_setup():
        raise Conflict("setup is already done; sign in instead")
    return create_user(email, password, role=Role.ADMIN)


def _password_problems(password: str, email: str, field: str = "password") -> list[dict]:
    """Why ``password`` is refused, as NIST SP 800-63B asks: too short, the account's email, or easy to guess."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        return [{"field": field, "message": f"use at least {MIN_PASSWORD} characters"}]
    if email and email in password.lower():
        return [{"field": field, "message": "do not use your email address in the password"}]
    # zxcvbn refuses more than 72 characters (its estimate grows with the square of the length): those tell enough.
    estimate = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[*_email_words(email), *SERVICE_WORDS])
    if estimate["score"] >= MIN_PASSWORD_SCORE:
        return []
    feedback = estimate["feedback"]
    hints = " ".join(filter(None, [feedback["warning"], *feedback["suggestions"]]))
    return [{"field": field, "message": f"this password is too easy to guess. {hints}".strip()}]


def _email_words(email: str) -> list[str]:
    """jane.doe@example.com -> the address, janedoe, jane, doe, example, com: what a guesser tries first."""
    local = email.partition("@")[0]
    return [email, re.sub(r"[\W_]+", "", local), *filter(None, re.split(r"[\W_]+", email))]


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (the same for every kind of failure)."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password or ""):
        return None
    return user if user is not None and user.active else None


def sign_in(email: str, password: str, *, remember: bool = False) -> User | None:
    """Check the credentials and start a sign-in (``user.session_key``); None when they are refused."""
    user = authenticate(email, password)
    if user is None:
        return None
    user.last_login_at = datetime.now(UTC)
    _start_session(user, remember)
    db.session.commit()
    return user


def start_session(user: User) -> None:
    """A new sign-in for ``user`` without a password check (just after setup created the account)."""
    user.last_login_at = datetime.now(UTC)
    _start_session(user, remember=False)
    db.session.commit()


def _start_session(user: User, remember: bool) -> None:
    """Record a sign-in with a fresh random key, which the cookies will carry; drop the user's expired ones."""
    now = datetime.now(UTC)
    config = current_app.config
    lifetime = config["REMEMBER_COOKIE_DURATION"] if remember else config["PERMANENT_SESSION_LIFETIME"]
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    user.session_key = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(user_id=user.id, key_hash=hash_token(user.session_key), created_at=now, expires_at=now + lifetime)
    )


def end_session(user: User) -> None:
    """Sign out: this sign-in's session and remember-me cookies stop working, wherever they were copied to."""
    if user.session_key is not None:
        db.session.execute(delete(UserSession).where(UserSession.key_hash == hash_token(user.session_key)))
        user.session_key = None
    db.session.commit()


def _end_all_sessions(user: User) -> None:
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def load_session_user(key: str) -> User | None:
    """Flask-Login's loader: the active user of the live sign-in whose key a cookie carries, in one query."""
    user = db.session.scalar(
        select(User)
        .join(User.sessions)
        .where(
            UserSession.key_hash == hash_token(key or ""),
            UserSession.expires_at > datetime.now(UTC),
            User.active.is_(True),
        )
    )
    if user is not None:
        user.session_key = key
    return user


def change_password(user: User, current: str, new: str) -> None:
    """One's own new password: every other sign-in ends, this one goes on under a new key."""
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed(
            "the current password is wrong", details=[{"field": "current_password", "message": "wrong password"}]
        )
    _replace_password(user, new, field="new_password")
    _start_session(user, remember=False)
    db.session.commit()


def set_password(user: User, new: str) -> None:
    """An admin's reset: the new password, and every sign-in of the user ends."""
    _replace_password(user, new)
    db.session.commit()


def _hash(password: str) -> str:
    """The password's hash: scrypt, unless the test suite asks for a cheaper method (PASSWORD_HASH_METHOD)."""
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def _replace_password(user: User, new: str, field: str = "password") -> None:
    problems = _password_problems(new, user.email, field)
    if problems:
        raise ValidationFailed(f"the new password is refused: {problems[0]['message']}", details=problems)
    user.password_hash = _hash(new)
    _end_all_sessions(user)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.email)))


def set_active(user: User, active: bool, *, by: User) -> None:
    """Disable or enable an account; a disabled account's sessions and tokens stop working at once."""
    if user.id == by.id and not active:
        raise Conflict("you cannot disable your own account")
    if not active and user.is_admin and _other_active_admins(user) == 0:
        raise Conflict("the last active admin cannot be disabled")
    user.active = active
    if not active:
        _end_all_sessions(user)
    db.session.commit()


def set_role(user: User, role: str, *, by: User) -> None:
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ValidationFailed("role must be admin or member", details=[{"field": "role", "message": "invalid"}])
    if user.is_admin and role != Role.ADMIN and _other_active_admins(user) == 0:
        raise Conflict("the last active admin must stay an admin")
    user.role = role
    db.session.commit()


def delete_user(user: User, *, by: User) -> None:
    """Remove an account and its tokens; its jobs stay (without an owner) for the admins."""
    if user.id == by.id:
        raise Conflict("you cannot remove your own account")
    if user.is_admin and _other_active_admins(user) == 0:
        raise Conflict("the last active admin cannot be removed")
    db.session.delete(user)
    db.session.commit()


def _other_active_admins(user: User) -> int:
    return db.session.execute(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)
    ).scalar_one()


# --- API tokens -----------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(user: User, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new personal token; returns the row and the token itself, which is never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "give the token a name (up to 100 characters)",
            details=[{"field": "name", "message": "required, up to 100 characters"}],
        )
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValidationFailed(
            "the expiry date must be in the future",
            details=[{"field": "expires_at", "message": "must be in the future"}],
        )
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(plain), prefix=plain[:10], expires_at=expires_at)
    db.session.add(token)
    db.session.commit()
    return token, plain


def revoke_token(user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (another user's token is not found)."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        db.session.commit()
    return token


def user_for_token(plain: str) -> User | None:
    """The active user a usable token belongs to; notes when it was last used (at most once a minute)."""
    if not plain or not plain.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if token is None or not hmac.compare_digest(token.token_hash, hash_token(plain)) or not token.is_usable:
        return None
    if not token.user.active:
        return None
    now = datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token.user
