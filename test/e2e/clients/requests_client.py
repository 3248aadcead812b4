"""python3-requests as a Digest client for the e2e tests (run with Debian's /usr/bin/python3).

Reads one JSON job on stdin:
  {"user": "...", "password": "...", "requests": [{"method": "GET", "url": "...", "json": {...}}]}
All requests go through ONE requests.Session with HTTPDigestAuth, as an application would do, so
later requests reuse the challenge (nc increments, a new cnonce each time). Prints a JSON list of
{"status": int, "body": str, "sentSha256": hex SHA-256 of the body sent} on stdout; when
requests raises instead (e.g. an algorithm it does not know), {"status": 0, "error": "..."}. "user": null sends no credentials.
"""

import hashlib
import json
import sys

import requests
from requests.auth import HTTPDigestAuth


def main() -> None:
    job = json.load(sys.stdin)
    session = requests.Session()
    if job.get("user") is not None:
        session.auth = HTTPDigestAuth(job["user"], job["password"])
    results = []
    for item in job["requests"]:
        kwargs = {"timeout": 20}
        if "json" in item:
            kwargs["json"] = item["json"]
        try:
            response = session.request(item.get("method", "GET"), item["url"], **kwargs)
        except Exception as error:  # noqa: BLE001 - reported to the test, which decides
            results.append({"status": 0, "body": "", "error": f"{type(error).__name__}: {error}"})
            continue
        sent = response.request.body or b""
        if isinstance(sent, str):
            sent = sent.encode("utf-8")
        results.append(
            {
                "status": response.status_code,
                "body": response.text,
                "sentSha256": hashlib.sha256(sent).hexdigest(),
            }
        )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
