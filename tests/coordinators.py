"""Dashboard logins for tests: an account, the login form's CSRF token, a logged-in client."""

from __future__ import annotations

import re

from hotline.dashboard import accounts
from hotline.core.extensions import db
from hotline.models import User

PASSWORD = "correct horse battery"


def make_user(email: str, role: str = "coordinator") -> User:
    user, _ = accounts.create(db.session, accounts.hasher(True), email, role, PASSWORD)
    return user


def csrf(client, path: str = "/dashboard/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def login(client, email: str, password: str = PASSWORD):
    return client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": email,
                                                 "password": password})


COORD = "coord@example.org"
WRONG = "wrong password!!"


def post_login(client, email: str, password: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/dashboard/login", headers=headers,
                       data={"csrf_token": csrf(client), "email": email, "password": password})
