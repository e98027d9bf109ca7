"""Label Studio connections: the URL and API key (never shown: :func:`mask`), loopback checks, errors, locks."""

from __future__ import annotations

import ipaddress
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from caibao import journal

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
class ReviewError(RuntimeError):
    """A review-loop failure with a message fit for the user (never containing the API key)."""


def mask(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    return text


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Connection:
    """Where Label Studio is; ``repr`` never shows the key."""

    url: str
    api_key: str = field(repr=False)

    @classmethod
    def resolve(cls, url: str | None = None, api_key: str | None = None) -> Connection:
        url = url or os.environ.get(URL_ENV)
        api_key = api_key or os.environ.get(API_KEY_ENV)
        if not url:
            raise ReviewError(f"no Label Studio URL: pass --url or set {URL_ENV}")
        if not api_key:
            raise ReviewError(f"no Label Studio API key: pass --api-key or set {API_KEY_ENV}")
        if not urlsplit(url).scheme or not urlsplit(url).hostname:
            raise ReviewError(f"not a URL: {mask(url, api_key)!r} (expected e.g. http://127.0.0.1:8080)")
        return cls(url.rstrip("/"), api_key)

    def client(self, timeout: float = 120.0):
        import httpx
        from label_studio_sdk import LabelStudio

        # A loopback server is reached directly: proxy variables must not reroute it.
        http = httpx.Client(timeout=timeout, follow_redirects=True, trust_env=not is_loopback_url(self.url))
        return LabelStudio(base_url=self.url, api_key=self.api_key, httpx_client=http, max_retries=1)


def describe_error(exc: BaseException) -> str:
    """A short description of an SDK or HTTP error (status and body, no headers)."""
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, ensure_ascii=False, default=str)
        return f"HTTP {exc.status_code}: {body[:300]}"
    try:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect ({exc})"
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out ({type(exc).__name__})"
    except ImportError:  # pragma: no cover
        pass
    return f"{type(exc).__name__}: {exc}"

@contextmanager
def ls_call(conn: Connection, what: str):
    """Turn any failure of a Label Studio call into a masked :class:`ReviewError`."""
    try:
        yield
    except ReviewError as exc:
        raise ReviewError(mask(str(exc), conn.api_key)) from None
    except Exception as exc:  # noqa: BLE001 - SDK, httpx and pydantic errors alike
        raise ReviewError(mask(f"Label Studio at {conn.url}: {what} failed: {describe_error(exc)}",
                               conn.api_key)) from None

@contextmanager
def held(lock, what: str):
    """``lock`` held for the block; a lock still busy after the timeout is a one-line ReviewError."""
    try:
        journal.acquire(lock, what)
    except journal.JournalError as exc:
        raise ReviewError(str(exc)) from None
    try:
        yield
    finally:
        lock.release()


def project_lock(conn: Connection, title: str):
    """Serialises push and pull of one project on this machine (no duplicate tasks from concurrent pushes)."""
    return journal.named_lock(f"project:{conn.url}|{title}")
