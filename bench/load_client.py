"""The load bench's clients (bench/load.py): one thread per simulated Super User, logging in
through the real login and two-factor pages, then mixing pages, searches, sorts and downloads;
and the recorder of their timings. Two-factor codes: see load.py's docstring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import random
import secrets
import struct
import threading
import time
from urllib.parse import urlencode, urlsplit

PASSWORD = "Load-Test-Meter-Keys-2026!"

TOTP_PERIOD = 30
# A code sent later than this into its period may reach the server (behind 49 other logins, each
# hashing a password) after the period ended: wait for the next one instead.
TOTP_LATEST_SECOND = 20


def totp_at(secret: str, counter_value: int) -> str:
    key = base64.b32decode(secret)
    counter = struct.pack(">Q", counter_value)
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def fresh_totp(secret: str, after: int = -1) -> tuple[str, int]:
    """A code of a period that has most of its 30 seconds left and comes after period
    ``after`` (the one whose code was refused), waiting for it if need be."""
    while True:
        now = time.time()
        period, into = divmod(now, TOTP_PERIOD)
        if period > after and into <= TOTP_LATEST_SECOND:
            return totp_at(secret, int(period)), int(period)
        time.sleep(TOTP_PERIOD - into + 0.05)


class Client:
    """One browser: its own loopback address and cookies, its requests sent as the proxy in
    front sends them (deploy/nginx.conf: a new upstream connection per request, HTTP/1.0's
    default). A kept-alive connection stays with the gunicorn worker that accepted it: the 50
    clients' connections, accepted at their login, crowded onto few of the 4 single-threaded
    workers, which answered one request at a time while the others idled (the floor page: 163
    requests/s at 50 clients, 165 at one, with half the machine idle)."""

    def __init__(self, port: int, source_ip: str) -> None:
        self.port = port
        self.source_ip = source_ip
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=60, source_address=(self.source_ip, 0)
            )
        return self.conn

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Host": f"127.0.0.1:{self.port}",
            # As the one TLS-terminating proxy in front would say (the server runs with
            # KAMKEYS_TRUSTED_PROXY_COUNT=1, so it believes these two and no more).
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": self.source_ip,
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Connection": "close",
        }
        body = None
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://127.0.0.1:{self.port}"
            headers["Referer"] = f"https://127.0.0.1:{self.port}{path}"
        for attempt in range(2):
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                self.conn = None
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, val = cookie.partition("=")
                self.cookies[key.strip()] = val.strip()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def follow(self, status: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        while status in (301, 302, 303):
            location = urlsplit(headers["location"])
            path = location.path + (f"?{location.query}" if location.query else "")
            status, headers, body = self.request("GET", path)
        return status, headers, b""

    def login(self, email: str, secret: str) -> None:
        self.request("GET", "/accounts/login/")
        status, headers, _ = self.request(
            "POST", "/accounts/login/", {"login": email, "password": PASSWORD}
        )
        if status != 302 or "2fa" not in headers.get("location", ""):
            raise RuntimeError(f"login of {email} answered {status}")
        self.request("GET", urlsplit(headers["location"]).path)
        used = -1
        for _attempt in range(2):
            code, used = fresh_totp(secret, after=used)
            status, headers, _ = self.request("POST", "/accounts/2fa/authenticate/", {"code": code})
            if status == 302:
                return
        raise RuntimeError(f"two-factor step of {email} answered {status} twice")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def add(self, kind: str, seconds: float, ok: bool, note: str = "") -> None:
        with self.lock:
            self.samples.setdefault(kind, []).append(seconds)
            if not ok:
                self.errors.append(f"{kind}: {note}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Window:
    """The measured minute: every client has logged in before it opens (a login hashes a
    password, ~100 ms of CPU, and is not one of the requests the figures are about)."""

    def __init__(self, clients: int, seconds: int) -> None:
        self.ready = threading.Barrier(clients + 1)
        self.seconds = seconds
        self.deadline = 0.0

    def open(self) -> None:
        self.deadline = time.monotonic() + self.seconds
        self.ready.wait()


FLOOR_PATH = "/devices/selection/paste/"  # page_profile.py's framework floor: no device query


def client_loop(
    index: int,
    port: int,
    secret: str,
    n_devices: int,
    window: Window,
    rec: Recorder,
    mix: str = "portal",
) -> None:
    """One client: log in, wait for the window, then request the mix until it closes. The
    "portal" mix is My devices' pages, searches, sorts and downloads; "floor" asks only for a
    small logged-in page with no device query, so the same clients measure what the stack
    itself (gunicorn, Django, sessions, the database connection) serves on this machine."""
    client = Client(port, f"127.0.0.{10 + index}")
    rng = random.Random(index)
    try:
        client.login(f"load{index}@bench.example", secret)
    except Exception as exc:  # noqa: BLE001 - a failed login is an error in the figures
        rec.add("login", 0.0, False, str(exc))
        window.ready.wait()
        return
    window.ready.wait()
    deadline = window.deadline
    pages = max(1, n_devices // 25)

    def timed(kind: str, method: str, path: str, form=None, expect=(200,), marker=b"") -> bytes:  # noqa: ANN001
        """One request; an error unless the status is expected and the body is what the kind
        claims (the device table, a ZIP file), so a redirect or a login page never counts."""
        started = time.perf_counter()
        try:
            status, _, body = client.request(method, path, form)
        except Exception as exc:  # noqa: BLE001
            rec.add(kind, time.perf_counter() - started, False, repr(exc))
            return b""
        good = status in expect and marker in body
        rec.add(kind, time.perf_counter() - started, good, f"HTTP {status} {path}")
        return body

    table = b'id="search-count"'

    if mix == "floor":
        while time.monotonic() < deadline:
            timed("floor", "GET", FLOOR_PATH, marker=b'name="serials"')
        return
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.45:
            timed("page", "GET", f"/devices/?page={rng.randint(1, pages)}", marker=table)
        elif roll < 0.80:
            field, term = rng.choice(
                [
                    ("serial", f"{70_000_000 + rng.randrange(n_devices)}"[:6] + "*"),
                    ("serial", f"{rng.randrange(1000):03d}"),
                    ("type", rng.choice(["multical", "flowiq", "403", "omni"])),
                    ("order", f"{4_000_000 + rng.randrange(max(1, n_devices // 500))}"),
                ]
            )
            timed("search", "GET", f"/devices/?{urlencode({field: term})}", marker=table)
        elif roll < 0.95:
            sort = rng.choice(["serial", "-serial", "order_no", "-device_type", "owner"])
            timed("sort", "GET", f"/devices/?sort={sort}&page={rng.randint(1, 50)}", marker=table)
        else:
            prefix = f"{70_000_000 + rng.randrange(n_devices)}"[:6]
            timed(
                "select_search",
                "POST",
                "/devices/selection/",
                {"action": "select_search", "serial": prefix + "*"},
                expect=(302,),
            )
            file_password = "Meter-Keys-" + secrets.token_hex(6)
            timed(
                "download",
                "POST",
                "/devices/download/",
                {"format": "zip", "password": file_password, "password_repeat": file_password},
                marker=b"PK\x03\x04",
            )
            timed("clear", "POST", "/devices/selection/", {"action": "clear"}, expect=(302,))
