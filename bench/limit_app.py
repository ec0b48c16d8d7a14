"""The machine's ingress limit: a bare Flask route doing one Redis LPUSH, nothing else."""

import os

import redis
from flask import Flask, request

app = Flask(__name__)
db = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@app.route("/v1/mail", methods=["POST"])
def push() -> tuple[str, int]:
    db.lpush("bench:limit", request.get_data())
    return "", 202
