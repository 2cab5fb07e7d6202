"""Accounts: setup, sign-in, passwords, roles, tokens (hashed, expiring, revocable) and the pages for them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import g, has_app_context
from sqlalchemy import select

from webapp.errors import Conflict, ValidationFailed
from webapp.extensions import db
from webapp.models import ApiToken, User, UserSession
from webapp.services import accounts

PASSWORD = "correct horse battery"
MEMBER = "member@example.com"
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Forms:
    """Posts forms as a browser does: with the CSRF token read from a page of the same session."""

    def __init__(self, client):
        self.client = client

    def get(self, url):
        return self.client.get(url)

    def post(self, url, data=None, page="/login", **kwargs):
        # Flask-WTF keeps the token on ``g``, which outlives requests when a test holds an app context:
        # another browser's page would show this one's token.
        if has_app_context():
            g.pop("csrf_token", None)
        token = CSRF_INPUT.search(self.client.get(page, **kwargs).text)
        return self.client.post(url, data={"csrf_token": token.group(1) if token else "", **(data or {})}, **kwargs)


@pytest.fixture
def forms(client):
    return Forms(client)


@pytest.fixture
def admin(app_ctx):
    return accounts.create_user("Admin@Example.com", PASSWORD, role="admin")


@pytest.fixture
def member(app_ctx):
    return accounts.create_user("member@example.com", PASSWORD)


def test_setup_is_needed_until_the_first_account(app_ctx):
    assert accounts.needs_setup()
    admin = accounts.create_first_admin("root@example.com", PASSWORD)
    assert admin.is_admin and not accounts.needs_setup()
    with pytest.raises(Conflict):
        accounts.create_first_admin("second@example.com", PASSWORD)


def test_passwords_are_hashed_with_scrypt_and_emails_normalised(app_ctx, config):
    app_ctx.config.pop("PASSWORD_HASH_METHOD")  # the suite's cheaper method; put back by ``config``
    admin = accounts.create_user("Admin@Example.com", PASSWORD, role="admin")
    assert admin.email == "admin@example.com"
    assert PASSWORD not in admin.password_hash and admin.password_hash.startswith("scrypt:")
    assert accounts.authenticate(" ADMIN@example.com ", PASSWORD) == admin
    assert accounts.authenticate("admin@example.com", "wrong password!") is None
    assert accounts.authenticate("nobody@example.com", PASSWORD) is None


@pytest.mark.parametrize(
    "email, password, field",
    [
        ("not-an-email", PASSWORD, "email"),
        ("a@b.c", "short", "password"),
    ],
)
def test_bad_account_details(app_ctx, email, password, field):
    with pytest.raises(ValidationFailed) as caught:
        accounts.create_user(email, password)
    assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize(
    "password, reason",
    [
        ("jane.doe@example.com", "email address"),
        ("Jane.Doe@Example.com!", "email address"),
        ("password1234", "common"),
        ("iloveyou2024", "common"),
        ("qwertyuiopasdf", "common"),
        ("aaaaaaaaaaaaaa", "Repeats"),
        ("abcabcabcabcabc", "Repeats"),
        ("1234567890123", "easy to guess"),
        ("janedoe12345", "easy to guess"),
    ],
)
def test_guessable_passwords_are_refused(admin, password, reason):
    with pytest.raises(ValidationFailed) as caught:
        accounts.create_user("jane.doe@example.com", password)
    assert caught.value.details[0]["field"] == "password" and reason in caught.value.details[0]["message"]
    jane = accounts.create_user("jane.doe@example.com", "plum orchard at dusk")
    with pytest.raises(ValidationFailed):
        accounts.change_password(jane, "plum orchard at dusk", password)
    with pytest.raises(ValidationFailed):
        accounts.set_password(jane, password)
    assert accounts.authenticate(jane.email, "plum orchard at dusk") == jane


LONG_PASSWORD = "".join(f"{word}{i}" for i, word in enumerate(["plum", "orchard", "river", "stone", "lamp"] * 30))


@pytest.mark.parametrize("password, accepted", [("[" * 5000 + "]" * 5000, False), (LONG_PASSWORD, True)])
def test_long_passwords_are_judged_by_their_first_72_characters(admin, password, accepted):
    if accepted:
        assert accounts.authenticate(accounts.create_user("long@example.com", password).email, password)
    else:
        with pytest.raises(ValidationFailed):
            accounts.create_user("long@example.com", password)


def test_duplicate_email_is_refused(admin):
    with pytest.raises(Conflict):
        accounts.create_user("ADMIN@example.com", PASSWORD)


def test_disabled_accounts_cannot_sign_in(admin, member):
    accounts.start_session(member)
    key = member.get_id()
    accounts.set_active(member, False, by=admin)
    assert accounts.authenticate("member@example.com", PASSWORD) is None
    assert accounts.load_session_user(key) is None
    accounts.set_active(member, True, by=admin)
    assert accounts.load_session_user(key) is None  # enabling again does not bring old sign-ins back


def test_password_change_ends_other_sessions(member):
    accounts.start_session(member)
    old_session = member.get_id()
    with pytest.raises(ValidationFailed):
        accounts.change_password(member, "wrong", "a new long password")
    assert accounts.load_session_user(old_session) == member
    accounts.change_password(member, PASSWORD, "a new long password")
    assert accounts.load_session_user(old_session) is None
    assert member.get_id() != old_session and accounts.load_session_user(member.get_id()) == member
    assert accounts.authenticate("member@example.com", "a new long password") == member


def test_an_admin_reset_ends_every_session(admin, member):
    keys = []
    for _ in range(2):
        accounts.start_session(member)
        keys.append(member.get_id())
    accounts.set_password(member, "another long password")
    assert [accounts.load_session_user(key) for key in keys] == [None, None]


def test_a_sign_in_ends_when_its_cookie_would(app, member):
    user = accounts.sign_in(member.email, PASSWORD, remember=True)
    remembered = db.session.scalars(select(UserSession)).one()
    assert remembered.expires_at - remembered.created_at == app.config["REMEMBER_COOKIE_DURATION"]
    remembered.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    assert accounts.load_session_user(user.get_id()) is None
    accounts.sign_in(member.email, PASSWORD)  # and the next sign-in clears the dead row away
    assert db.session.scalars(select(UserSession)).one().expires_at > datetime.now(UTC)


def test_the_last_admin_stays(admin, member):
    with pytest.raises(Conflict):
        accounts.set_active(admin, False, by=admin)
    with pytest.raises(Conflict):
        accounts.set_role(admin, "member", by=member)
    with pytest.raises(Conflict):
        accounts.delete_user(admin, by=member)
    accounts.delete_user(member, by=admin)
    assert db.session.get(User, member.id) is None


def test_tokens_are_shown_once_and_stored_as_hashes(member):
    token, plain = accounts.create_token(member, "ci script")
    assert plain.startswith("bp_") and len(plain) > 40
    stored = db.session.scalars(select(ApiToken)).one()
    assert plain not in (stored.token_hash, stored.prefix) and stored.prefix == plain[:10]
    assert accounts.user_for_token(plain) == member
    assert token.last_used_at is not None
    assert accounts.user_for_token(plain + "x") is None
    assert accounts.user_for_token("") is None


def test_revoked_and_expired_tokens_fail(admin, member):
    _, revoked = accounts.create_token(member, "old")
    accounts.revoke_token(member, _.id)
    assert accounts.user_for_token(revoked) is None
    expiring, plain = accounts.create_token(member, "short", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert accounts.user_for_token(plain) == member
    expiring.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    assert accounts.user_for_token(plain) is None
    with pytest.raises(ValidationFailed):
        accounts.create_token(member, "past", expires_at=datetime.now(UTC) - timedelta(days=1))


def test_a_token_of_a_disabled_user_fails(admin, member):
    _, plain = accounts.create_token(member, "t")
    accounts.set_active(member, False, by=admin)
    assert accounts.user_for_token(plain) is None


def test_users_cannot_revoke_each_others_tokens(admin, member):
    token, _ = accounts.create_token(member, "mine")
    from webapp.errors import NotFound

    with pytest.raises(NotFound):
        accounts.revoke_token(admin, token.id)


# --- pages ----------------------------------------------------------------------------------------------


def test_first_visit_goes_to_setup_then_signs_in(app, forms, app_ctx):
    assert forms.get("/login").headers["Location"].endswith("/setup")
    response = forms.post(
        "/setup", {"email": "boss@example.com", "password": PASSWORD, "confirm": PASSWORD}, page="/setup"
    )
    assert response.status_code == 302
    assert forms.get("/setup").headers["Location"].endswith("/login")
    assert db.session.scalar(select(User.role)) == "admin"


def test_the_admin_who_set_up_is_signed_in_and_the_users_page_says_when(app, forms, app_ctx):
    forms.post("/setup", {"email": "boss@example.com", "password": PASSWORD, "confirm": PASSWORD}, page="/setup")
    page = forms.get("/admin/users").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>boss@example.com \(you\)</td>.*?</tr>", page, re.S).group(0)
    assert "never" not in row and re.search(r'<td class="nowrap">\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>', row)


@pytest.mark.parametrize("path", ["/setup", "/account/password", "/admin/users"])
def test_the_password_rule_is_shown_before_anyone_fails_it(app, forms, app_ctx, path):
    if path != "/setup":
        forms.post("/setup", {"email": "boss@example.com", "password": PASSWORD, "confirm": PASSWORD}, page="/setup")
    page = forms.get(path).get_data(as_text=True)
    assert accounts.PASSWORD_RULE in page.replace("&#39;", "'")
    field = re.search(r'<input(?=[^>]*type="password")[^>]*aria-describedby="([^"]+)"', page)
    assert field and re.search(rf'<small id="{field.group(1).split()[0]}" class="hint">', page)


def test_login_and_logout(forms, member):
    response = forms.post("/login", {"email": "member@example.com", "password": "nope nope nope"})
    assert response.status_code == 401 and b"Wrong email or password" in response.data
    response = forms.post("/login?next=//evil.example.com/x", {"email": "member@example.com", "password": PASSWORD})
    assert response.status_code == 302 and "evil" not in response.headers["Location"]
    assert forms.get("/account/tokens").status_code == 200
    forms.post("/logout", page="/account/tokens")
    assert forms.get("/account/tokens").status_code == 302


def sign_in_with_remember_me(client, email=MEMBER, password=PASSWORD):
    response = Forms(client).post("/login", {"email": email, "password": password, "remember": "y"})
    assert response.status_code == 302
    return {name: client.get_cookie(name).value for name in ("session", "remember_token")}


def signed_in_with(app, cookies: dict) -> bool:
    """Whether a fresh browser holding only these cookies gets a signed-in page."""
    browser = app.test_client()
    for name, value in cookies.items():
        browser.set_cookie(name, value)
    return browser.get("/account/tokens").status_code == 200


def test_sign_out_ends_the_session_and_its_remember_me_cookie_for_good(app, client, member):
    copied = sign_in_with_remember_me(client)
    assert signed_in_with(app, {"session": copied["session"]})
    assert signed_in_with(app, {"remember_token": copied["remember_token"]})
    Forms(client).post("/logout", page="/account/tokens")
    assert client.get("/account/tokens").status_code == 302
    assert not signed_in_with(app, {"session": copied["session"]})
    assert not signed_in_with(app, {"remember_token": copied["remember_token"]})
    assert not signed_in_with(app, copied)


def test_each_sign_in_has_its_own_key_and_signs_out_alone(app, member):
    laptop, phone = app.test_client(), app.test_client()
    first, second = sign_in_with_remember_me(laptop), sign_in_with_remember_me(phone)
    assert first["remember_token"] != second["remember_token"]
    Forms(laptop).post("/logout", page="/account/tokens")
    assert not signed_in_with(app, {"remember_token": first["remember_token"]})
    assert signed_in_with(app, {"remember_token": second["remember_token"]})
    assert phone.get("/account/tokens").status_code == 200


def test_changing_ones_password_keeps_this_browser_and_signs_out_the_others(app, member):
    here, elsewhere = app.test_client(), app.test_client()
    sign_in_with_remember_me(here)
    copied = sign_in_with_remember_me(elsewhere)
    new = "plum orchard at dusk"
    response = Forms(here).post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": new, "confirm": new},
        page="/account/password",
    )
    assert response.status_code == 302
    assert here.get("/account/tokens").status_code == 200
    assert elsewhere.get("/account/tokens").status_code == 302
    assert not signed_in_with(app, {"remember_token": copied["remember_token"]})


def test_login_without_csrf_token_is_refused(client, member):
    response = client.post("/login", data={"email": "member@example.com", "password": PASSWORD})
    assert response.status_code == 400


def test_token_page_shows_a_new_token_once(forms, member):
    forms.post("/login", {"email": "member@example.com", "password": PASSWORD})
    page = forms.post("/account/tokens", {"name": "laptop", "expires_in_days": "30"}, page="/account/tokens").get_data(
        as_text=True
    )
    token = db.session.scalars(select(ApiToken)).one()
    assert "bp_" in page and "will not be shown again" in page
    again = forms.get("/account/tokens").get_data(as_text=True)
    assert token.prefix in again and "will not be shown again" not in again
    forms.post(f"/account/tokens/{token.id}/revoke", page="/account/tokens")
    db.session.refresh(token)
    assert token.revoked_at is not None


def test_only_admins_manage_users(forms, admin, member):
    forms.post("/login", {"email": "member@example.com", "password": PASSWORD})
    assert forms.get("/admin/users").status_code == 403
    forms.post("/logout", page="/account/tokens")
    forms.post("/login", {"email": "admin@example.com", "password": PASSWORD})
    assert b"member@example.com" in forms.get("/admin/users").data
    response = forms.post(
        "/admin/users", {"email": "new@example.com", "password": PASSWORD, "role": "member"}, page="/admin/users"
    )
    assert response.status_code == 302
    forms.post(f"/admin/users/{member.id}/disable", page="/admin/users")
    db.session.refresh(member)
    assert member.active is False


def test_security_headers_on_every_response(client):
    headers = client.get("/health").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # development: plain http on localhost


def test_the_api_docs_page_keeps_the_sites_csp(client):
    from webapp.security import CONTENT_SECURITY_POLICY

    response = client.get("/api/v1/swagger")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    scripts = re.findall(r"<script[^>]*>", response.text)
    assert scripts and all(" src=" in tag for tag in scripts) and "<style" not in response.text


def test_production_sends_hsts(app, client):
    app.config["APP_ENV"] = "production"
    try:
        headers = client.get("/health").headers
    finally:
        app.config["APP_ENV"] = "development"
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def cookie_attributes(response, name: str) -> list[str]:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    return [part.strip() for part in header.split(";")[1:]]


@pytest.mark.parametrize("production", [False, True])
def test_session_and_remember_cookies_are_same_site_lax(app, client, member, production):
    from webapp.config import from_env

    saved = {key: app.config[key] for key in app.config if "_COOKIE_" in key}
    app.config.update(
        {
            key: value
            for key, value in from_env(
                app.instance_path, {"APP_ENV": "production" if production else "development", "SECRET_KEY": "x"}
            ).items()
            if "_COOKIE_" in key
        }
    )
    try:
        response = Forms(client).post("/login", {"email": member.email, "password": PASSWORD, "remember": "y"})
    finally:
        app.config.update(saved)
    assert response.status_code == 302
    for name in ("session", "remember_token"):
        attributes = cookie_attributes(response, name)
        assert "SameSite=Lax" in attributes and "HttpOnly" in attributes, (name, attributes)
        assert ("Secure" in attributes) is production, (name, attributes)


def test_signed_in_pages_and_downloads_are_never_stored(client, member):
    from tests.conftest import api_token
    from tests.factories import new_job

    job = new_job(count=1, owner_id=member.id)
    Forms(client).post("/login", {"email": member.email, "password": PASSWORD})
    token = {"Authorization": f"Bearer {api_token(member)}"}
    calls = [
        (path, {"Accept": "text/html"})
        for path in (
            "/jobs",
            f"/jobs/{job.id}",
            f"/jobs/{job.id}/requests",
            f"/jobs/{job.id}/results.csv",
            f"/jobs/{job.id}/results.jsonl",
        )
    ]
    calls += [
        (f"/jobs/{job.id}", {"HX-Request": "true"}),
        (f"/api/v1/jobs/{job.id}", token),
        (f"/api/v1/jobs/{job.id}/results?format=csv", token),
    ]
    for path, headers in calls:
        response = client.get(path, headers=headers)
        response.get_data()  # downloads are streamed: read each one out before the next request
        assert response.status_code in (200, 286), path  # 286: htmx, stop polling a draft
        assert response.headers["Cache-Control"] == "no-store", path
    # Static files keep their own caching (revalidated, never stored with someone's data).
    assert client.get("/static/css/dashboard.css").headers["Cache-Control"] == "no-cache"


def test_cli_creates_an_admin(app, app_ctx):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "cli@example.com", "--admin", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User.role).where(User.email == "cli@example.com")) == "admin"
    bad = app.test_cli_runner().invoke(args=["users", "create", "x", "--password", "short"])
    assert bad.exit_code != 0 and "at least 10 characters" in bad.output
