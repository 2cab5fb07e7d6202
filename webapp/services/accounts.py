"""Accounts: first-run setup, sign-in, passwords, roles, and personal API tokens (stored as hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.errors import Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.models import ApiToken, Role, User

MIN_PASSWORD = 10
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
    problems = _password_problems(password)
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        problems.append({"field": "email", "message": "enter a valid email address"})
    if role not in (Role.ADMIN, Role.MEMBER):
        problems.append({"field": "role", "message": "role must be admin or member"})
    if problems:
        raise ValidationFailed("the account details are not valid", details=problems)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"an account for {email} already exists")
    user = User(email=email, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def create_first_admin(email: str, password: str) -> User:
    """The one-time setup: only while no account exists."""
    if not needs_setup():
        raise Conflict("setup is already done; sign in instead")
    return create_user(email, password, role=Role.ADMIN)


def _password_problems(password: str) -> list[dict]:
    if len(password or "") < MIN_PASSWORD:
        return [{"field": "password", "message": f"use at least {MIN_PASSWORD} characters"}]
    return []


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (the same for every kind of failure)."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password or ""):
        return None
    if not user.active:
        return None
    user.last_login_at = datetime.now(timezone.utc)
    db.session.commit()
    return user


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: ``"<id>:<version>"``; an old version (password changed) no longer signs in."""
    user_id, _, version = (session_id or "").partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or not user.active:
        return None
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed("the current password is wrong",
                               details=[{"field": "current_password", "message": "wrong password"}])
    set_password(user, new)


def set_password(user: User, new: str) -> None:
    """Set a new password (own change or an admin's reset) and sign the user out of other sessions."""
    problems = _password_problems(new)
    if problems:
        raise ValidationFailed("the new password is too short", details=problems)
    user.password_hash = generate_password_hash(new)
    user.session_version += 1
    db.session.commit()


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
    user.session_version += 1
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
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN, User.active.is_(True), User.id != user.id))


# --- API tokens -----------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(user: User, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new personal token; returns the row and the token itself, which is never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("give the token a name (up to 100 characters)",
                               details=[{"field": "name", "message": "required, up to 100 characters"}])
    if expires_at is not None and expires_at <= datetime.now(timezone.utc):
        raise ValidationFailed("the expiry date must be in the future",
                               details=[{"field": "expires_at", "message": "must be in the future"}])
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(plain), prefix=plain[:10],
                     expires_at=expires_at)
    db.session.add(token)
    db.session.commit()
    return token, plain


def revoke_token(user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (another user's token is not found)."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(timezone.utc)
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
    now = datetime.now(timezone.utc)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token.user
