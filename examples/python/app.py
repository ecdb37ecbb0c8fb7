"""A Python app behind the Latch edge: Flask and PyJWT. Copy it and change the handlers.

Configuration (environment):
  PORT                      where this app listens (default 3000)
  LATCH_EDGE_URL            the edge in front of it: its keys are at /.well-known/latch-assertion-jwks.json
  LATCH_ASSERTION_AUDIENCE  the assertion's aud: the edge's ASSERTION_AUDIENCE (by default its UPSTREAM_URL)
  LATCH_ASSERTION_ISSUER    the assertion's iss: the edge's ASSERTION_ISSUER (default latch-edge)
  LATCH_ORIGIN_URL          the origin's API, for session info
  LATCH_API_KEY             the origin's API key
"""

import json
import os
from urllib.parse import quote

import jwt
import requests
from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

EDGE = os.environ.get("LATCH_EDGE_URL", "http://127.0.0.1:8787")
ORIGIN = os.environ.get("LATCH_ORIGIN_URL", "http://127.0.0.1:3567")
API_KEY = os.environ.get("LATCH_API_KEY", "")
ISSUER = os.environ.get("LATCH_ASSERTION_ISSUER", "latch-edge")
AUDIENCE = os.environ.get("LATCH_ASSERTION_AUDIENCE")
if not AUDIENCE:
    # Without an audience, an assertion meant for another app behind the same edge would pass.
    raise SystemExit("set LATCH_ASSERTION_AUDIENCE: this app's ASSERTION_AUDIENCE at the edge")

# Fetches the edge's keys once and again on an unknown key id.
keys = jwt.PyJWKClient(f"{EDGE}/.well-known/latch-assertion-jwks.json", cache_keys=True)
app = Flask(__name__)
# Bodies are bounded: over this, Flask refuses the request (413, below).
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
# An oversized body is read to its end (discarded, up to this) before the 413.
DRAIN_LIMIT = 16 * 1024 * 1024


class Unauthorised(Exception):
    pass


def identity():
    """Who is calling: the edge's signed assertion, never the plain x-latch-user-id header."""
    assertion = request.headers.get("x-latch-assertion")
    if not assertion:
        raise Unauthorised("no assertion: the request did not come through the edge")
    try:
        key = keys.get_signing_key_from_jwt(assertion)
        return jwt.decode(
            assertion,
            key.key,
            algorithms=["EdDSA"],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "sid"]},
            leeway=5,
        )
    except jwt.PyJWTError as err:
        raise Unauthorised(str(err)) from err


def csrf_passed(claims):
    """The seed's getSession(req, res, true) for state-changing calls: the edge says what it found."""
    return claims.get("csrf") in ("passed", "same_origin", "not_applicable")


def session_info(handle, method="GET", body=None):
    response = requests.request(
        method,
        f"{ORIGIN}/v1/sessions/{quote(handle, safe='')}/info",
        headers={"authorization": f"Bearer {API_KEY}"},
        json=body,
        timeout=10,
    )
    return jsonify(response.json()), response.status_code


@app.errorhandler(Unauthorised)
def unauthorised(err):
    return jsonify(error="UNAUTHORISED", message=str(err)), 401


@app.errorhandler(RequestEntityTooLarge)
def too_large(err):
    # The development server closes the connection after every answer, and closing it with
    # unread bytes on it resets it: the caller would see a lost connection, not this answer.
    left = min(request.content_length or 0, DRAIN_LIMIT)
    stream = request.environ["wsgi.input"]
    while left > 0:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            break
        left -= len(chunk)
    limit = app.config["MAX_CONTENT_LENGTH"]
    return jsonify(error="BAD_REQUEST", message=f"the body is over {limit} bytes"), 413


@app.get("/login")
def login():
    # Authenticate the person first (a password, a magic link...); then tell the edge.
    user = request.args.get("user", "")
    user_id = int(user) if request.args.get("numeric") == "1" else user
    instruction = {"user_id": user_id, "jwt_payload": {"name": user}, "session_info": {"visits": 0}}
    # Header values must be ASCII: json.dumps escapes non-ASCII characters as \u by default.
    return jsonify(status="OK"), 200, {"x-latch-login": json.dumps(instruction)}


@app.get("/me")
def me():
    claims = identity()
    return jsonify(
        user_id=claims["uid"],
        sub=claims["sub"],
        session_handle=claims["sid"],
        jwt_payload=claims.get("pld"),
        csrf=claims["csrf"],
    )


@app.get("/info")
def read_info():
    return session_info(identity()["sid"])


@app.post("/info")
def write_info():
    claims = identity()
    if not csrf_passed(claims):
        return jsonify(error="TRY_REFRESH_TOKEN", message="anti-csrf check failed"), 403
    try:
        body = json.loads(request.get_data())
    except (ValueError, RecursionError):  # 10,000 '[' is a RecursionError, not a ValueError
        return jsonify(error="BAD_REQUEST", message="the body must be JSON"), 400
    if not isinstance(body, dict) or "session_info" not in body:
        return jsonify(error="BAD_REQUEST", message='send {"session_info": ...}'), 400
    return session_info(claims["sid"], "PUT", {"session_info": body["session_info"]})


@app.post("/logout")
def logout():
    identity()
    return jsonify(status="OK"), 200, {"x-latch-logout": "1"}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "3000")))
