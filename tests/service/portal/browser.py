"""A signed-in portal session on Flask's test client: the CSRF token read off the page as
a browser would, and form posts that send it back."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    m = _CSRF.search(page.get_data(as_text=True))
    assert m, "the page has no CSRF token"
    return m.group(1)


class Browser:
    def __init__(self, app: Flask) -> None:
        self.client: FlaskClient = app.test_client()
        self.csrf = ""

    def get(self, path: str, **kw: Any) -> TestResponse:
        page = self.client.get(path, **kw)
        if page.status_code < 300 and page.mimetype == "text/html" and "csrf_token" in page.text:
            self.csrf = csrf_of(page)
        return page

    def post(self, path: str, data: Any = None, **kw: Any) -> TestResponse:
        form = {"csrf_token": self.csrf, **(data or {})}
        page = self.client.post(path, data=form, **kw)
        if page.mimetype == "text/html" and "csrf_token" in page.text:
            self.csrf = csrf_of(page)
        return page

    def sign_in(self, username: str, password: str) -> TestResponse:
        self.get("/login")
        r = self.post("/login", {"username": username, "password": password})
        assert r.status_code == 303, r.text
        self.get("/slices")
        return r
