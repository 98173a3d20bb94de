"""The SoftFactory sample API: the app the release operator's README talks about.

Small on purpose, but real: PostgreSQL through Flask-SQLAlchemy, schema changes through
Flask-Migrate (`flask db upgrade` is the runbook's migration step), a /health endpoint
that checks the database as the runbook's health check does, Prometheus metrics, and the
version in every response, so a client can see which release answered it.

Configuration, all from the environment:
  DATABASE_URL   postgresql://user:password@host:port/db (a "+driver" suffix is fine)
  APP_VERSION    overrides the version baked into the image (the VERSION file)
"""
import os
import socket
import threading
import time

from flask import Flask, Response, jsonify, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text


def _baked_version():
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as f:
            return f.read().strip()
    except OSError:
        return "0.0.0-dev"


VERSION = os.environ.get("APP_VERSION") or _baked_version()
MAJOR = int(VERSION.split(".")[0] or 0)
# Version 2 added items.status (migration 0002): from then on the API shows it.
HAS_STATUS = MAJOR >= 2
# Version 3 renamed items.name to items.title in two steps (README, "Example: renaming a
# column"): 0003 adds title and keeps both in sync while versions 2 and 3 serve, 0004
# drops name once version 2 is gone. Version 3 reads and writes title only, version 2
# name only; the API field follows the column, and version 3 still accepts "name" in a
# request from a client written for version 2.
LABEL = "title" if MAJOR >= 3 else "name"
ITEM_COLUMNS = f"id, {LABEL}, status" if HAS_STATUS else f"id, {LABEL}"
POD = socket.gethostname()


def _database_url():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return url


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = _database_url()
# One pooled connection per gunicorn thread, kept: a new connection costs a backend fork
# and a SCRAM handshake, seconds on a busy node, and SQLAlchemy closes overflow
# connections after each use. A dead connection in the pool must not fail a request
# (pre-ping), and a database that does not answer must fail /health rather than hang it.
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
    "pool_pre_ping": True,
    "pool_size": 8,
    "max_overflow": 4,
    "connect_args": {"connect_timeout": 5},
}
db = SQLAlchemy(app)
migrate = Migrate(app, db)

# Prometheus counter, kept by hand: one process (gunicorn runs one worker with threads),
# so a dict under a lock is all a counter needs.
_requests = {}
_requests_lock = threading.Lock()
_started = time.time()


@app.after_request
def _count(response):
    key = (request.method, request.url_rule.rule if request.url_rule else "unmatched", response.status_code)
    with _requests_lock:
        _requests[key] = _requests.get(key, 0) + 1
    response.headers["X-App-Version"] = VERSION
    return response


@app.get("/")
def index():
    count = db.session.execute(text("SELECT count(*) FROM items")).scalar()
    return jsonify(service="softfactory", version=VERSION, pod=POD, items=count)


@app.get("/health")
def health():
    # The runbook's check: the API is up and can run a query on its database.
    try:
        db.session.execute(text("SELECT 1")).scalar()
    except Exception as exc:  # any database error means "not healthy", with why
        db.session.rollback()
        return jsonify(status="unhealthy", database=str(exc).splitlines()[0], version=VERSION, pod=POD), 503
    return jsonify(status="ok", database="ok", version=VERSION, pod=POD)


@app.get("/items")
def list_items():
    rows = db.session.execute(text(f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id")).mappings().all()
    return jsonify(version=VERSION, items=[dict(r) for r in rows])


@app.get("/items/<int:item_id>")
def get_item(item_id):
    row = db.session.execute(text(f"SELECT {ITEM_COLUMNS} FROM items WHERE id = :id"), {"id": item_id}).mappings().first()
    if row is None:
        return jsonify(error=f"no item {item_id}", version=VERSION, pod=POD), 404
    return jsonify(version=VERSION, pod=POD, item=dict(row))


@app.post("/items")
def create_item():
    body = request.get_json(silent=True) or {}
    label = None
    for field in (LABEL, "name"):  # version 3 also takes version 2's field
        label = label or body.get(field) or request.args.get(field)
    if not label:
        return jsonify(error=f"{LABEL} is required"), 400
    item_id = db.session.execute(
        text(f"INSERT INTO items ({LABEL}) VALUES (:label) RETURNING id"), {"label": label}
    ).scalar()
    db.session.commit()
    return jsonify(version=VERSION, pod=POD, id=item_id, **{LABEL: label}), 201


@app.get("/metrics")
def metrics():
    lines = [
        "# HELP softfactory_http_requests_total HTTP requests served, by method, route and status.",
        "# TYPE softfactory_http_requests_total counter",
    ]
    with _requests_lock:
        snapshot = sorted(_requests.items())
    for (method, path, status), n in snapshot:
        lines.append(f'softfactory_http_requests_total{{method="{method}",path="{path}",status="{status}"}} {n}')
    lines += [
        "# HELP softfactory_app_info The running version of the app.",
        "# TYPE softfactory_app_info gauge",
        f'softfactory_app_info{{version="{VERSION}"}} 1',
        "# HELP softfactory_process_start_time_seconds When the process started.",
        "# TYPE softfactory_process_start_time_seconds gauge",
        f"softfactory_process_start_time_seconds {_started:.3f}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
