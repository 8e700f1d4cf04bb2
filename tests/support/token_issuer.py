#!/usr/bin/env python3
"""Token issuer for registry token authentication, for integration tests only.

Implements the token endpoint that CNCF distribution's `auth.token` realm points to:

* GET  /token?service=S&scope=repository:NAME:pull[&scope=...][&offline_token=true&client_id=C]
  with HTTP Basic credentials, or none for an anonymous request.
* POST /token with a form body: grant_type=password (username, password) or
  grant_type=refresh_token (refresh_token), plus service, scope (space-separated), client_id
  and access_type=offline to receive a refresh token. Docker's identitytoken flow uses the
  refresh_token grant.

Tokens are RS256 JWTs signed with the `openssl` CLI. The JOSE header carries `x5c` with the
signing certificate, which the registry must list in `auth.token.rootcertbundle`.

Usage: token_issuer.py CONFIG.json. The config keys are:
  issuer, service, key_file, cert_file, request_log, token_lifetime_seconds,
  anonymous_pull (bool), users ([{username, password, actions}]),
  refresh_tokens ([{token, username}]).
The server binds 127.0.0.1 on a port the kernel picks and prints
"listening on 127.0.0.1:PORT" as its first line of standard output.

Every request is appended to request_log as one JSON object per line. A record contains
the method, grant type, service, scopes, client id, user name, whether a password or refresh
token was present, the response status and the granted access. It never contains a password,
a refresh token or an issued token.

Python 3 standard library only.
"""

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ACTIONS = ["pull", "push"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def certificate_der_base64(cert_file: str) -> str:
    """Return the first certificate of a PEM file as standard base64 DER, as x5c needs."""
    with open(cert_file, encoding="ascii") as pem:
        lines = pem.read().splitlines()
    start = lines.index("-----BEGIN CERTIFICATE-----")
    end = lines.index("-----END CERTIFICATE-----")
    return "".join(lines[start + 1 : end])


def parse_scopes(values):
    """Parse `type:name:actions` scopes, each value possibly holding several separated by spaces.

    The name is everything between the first and the last colon, so a name never loses a
    colon that belongs to it.
    """
    scopes = []
    for value in values:
        for item in value.split():
            kind, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2:
                continue
            scopes.append(
                {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}
            )
    return scopes


class Issuer:
    def __init__(self, config):
        self.issuer = config["issuer"]
        self.default_service = config["service"]
        self.key_file = config["key_file"]
        self.x5c = [certificate_der_base64(config["cert_file"])]
        self.request_log = config["request_log"]
        self.lifetime = int(config.get("token_lifetime_seconds", 300))
        self.anonymous_pull = bool(config.get("anonymous_pull", False))
        self.users = {
            user["username"]: {
                "password": user["password"],
                "actions": user.get("actions", DEFAULT_ACTIONS),
            }
            for user in config.get("users", [])
        }
        self.refresh_tokens = {
            entry["token"]: entry["username"] for entry in config.get("refresh_tokens", [])
        }
        self.lock = threading.Lock()

    def check_password(self, username, password):
        user = self.users.get(username)
        return user is not None and secrets.compare_digest(user["password"], password)

    def user_for_refresh_token(self, token):
        with self.lock:
            return self.refresh_tokens.get(token)

    def new_refresh_token(self, username):
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = username
        return token

    def grant(self, username, scopes):
        """Return the access list for the requested scopes.

        A known user gets the requested repository actions that its `actions` list allows.
        An anonymous request gets `pull` only when anonymous_pull is set, and otherwise nothing.
        """
        if username is None:
            allowed = ["pull"] if self.anonymous_pull else []
        else:
            allowed = self.users.get(username, {}).get("actions", DEFAULT_ACTIONS)
        access = []
        for scope in scopes:
            if scope["type"] != "repository":
                continue
            actions = [action for action in scope["actions"] if action in allowed]
            if actions:
                access.append({"type": "repository", "name": scope["name"], "actions": actions})
        return access

    def sign(self, username, service, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            # distribution 2.8 rejects a JSON list here as a malformed token.
            "aud": service,
            "exp": now + self.lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key_file],
            input=signing_input.encode("ascii"),
            capture_output=True,
            check=True,
        ).stdout
        return signing_input + "." + b64url(signature)

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, open(self.request_log, "a", encoding="utf-8") as log:
            log.write(line)


class Handler(BaseHTTPRequestHandler):
    server_version = "harness-token-issuer"
    protocol_version = "HTTP/1.1"

    @property
    def issuer(self) -> Issuer:
        return self.server.issuer

    def log_message(self, format, *args):
        # The default handler logs every request line to stderr, and the request log
        # already records each one.
        pass

    def basic_credentials(self):
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            return ("", None)
        username, _, password = decoded.partition(":")
        return (username, password)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [self.issuer.default_service])[0]
        scopes = parse_scopes(query.get("scope", []))
        credentials = self.basic_credentials()
        entry = {
            "method": "GET",
            "path": url.path,
            "grant_type": None,
            "service": query.get("service", [None])[0],
            "scope": query.get("scope", []),
            "client_id": query.get("client_id", [None])[0],
            "offline_token": query.get("offline_token", [None])[0] == "true",
            "username": credentials[0] if credentials else None,
            "password_present": bool(credentials and credentials[1]),
            "refresh_token_present": False,
        }
        if url.path != "/token":
            return self.finish_json(entry, 404, {"error": "not_found"})
        if credentials is None:
            username = None
        elif self.issuer.check_password(credentials[0], credentials[1] or ""):
            username = credentials[0]
        else:
            return self.reject(entry)

        access = self.issuer.grant(username, scopes)
        token = self.issuer.sign(username, service, access)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self.issuer.lifetime,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if username is not None and entry["offline_token"]:
            body["refresh_token"] = self.issuer.new_refresh_token(username)
        entry["granted"] = access
        self.finish_json(entry, 200, body)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8"))

        def field(name):
            return form.get(name, [None])[0]

        grant_type = field("grant_type")
        service = field("service") or self.issuer.default_service
        scopes = parse_scopes(form.get("scope", []))
        entry = {
            "method": "POST",
            "path": url.path,
            "grant_type": grant_type,
            "service": field("service"),
            "scope": form.get("scope", []),
            "client_id": field("client_id"),
            "offline_token": field("access_type") == "offline",
            "username": field("username"),
            "password_present": bool(field("password")),
            "refresh_token_present": bool(field("refresh_token")),
        }
        if url.path != "/token":
            return self.finish_json(entry, 404, {"error": "not_found"})

        if grant_type == "password":
            username = field("username") or ""
            if not self.issuer.check_password(username, field("password") or ""):
                return self.reject(entry)
            refresh_token = (
                self.issuer.new_refresh_token(username) if entry["offline_token"] else None
            )
        elif grant_type == "refresh_token":
            refresh_token = field("refresh_token") or ""
            username = self.issuer.user_for_refresh_token(refresh_token)
            if username is None:
                return self.reject(entry)
            entry["username"] = username
        else:
            return self.finish_json(entry, 400, {"error": "unsupported_grant_type"})

        access = self.issuer.grant(username, scopes)
        body = {
            "access_token": self.issuer.sign(username, service, access),
            "scope": " ".join(form.get("scope", [])),
            "expires_in": self.issuer.lifetime,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        entry["granted"] = access
        self.finish_json(entry, 200, body)

    def reject(self, entry):
        """Send 401 with an error body, as for any invalid credentials."""
        body = {
            "errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}],
            "error": "invalid_grant",
        }
        self.finish_json(entry, 401, body)

    def finish_json(self, entry, status, body):
        entry["status"] = status
        entry.setdefault("granted", [])
        self.issuer.record(entry)
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def exit_when_orphaned(parent_pid):
    """Exit once the parent (the test process) is gone, so a killed test leaves no server."""
    while True:
        time.sleep(1)
        if os.getppid() != parent_pid:
            os._exit(0)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: token_issuer.py CONFIG.json")
    with open(sys.argv[1], encoding="utf-8") as config_file:
        config = json.load(config_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.issuer = Issuer(config)
    threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
