"""Python's urllib.request as a Digest client for the e2e tests (Debian's /usr/bin/python3).

Reads one JSON job on stdin: {"user": "..." or null, "password": "...", "url": "..."}. Opens the URL
with an HTTPDigestAuthHandler, as a script using only the standard library would. Prints
{"status": int, "body": str} on stdout (an HTTP error status is an answer too); when urllib
raises otherwise (e.g. an algorithm it does not know), {"status": 0, "body": "", "error": "..."}.
"""

import json
import sys
import urllib.error
import urllib.request


def main() -> None:
    job = json.load(sys.stdin)
    handlers = []
    if job.get("user") is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, job["url"], job["user"], job["password"])
        handlers.append(urllib.request.HTTPDigestAuthHandler(passwords))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(job["url"], timeout=20) as response:
            result = {"status": response.status, "body": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as error:
        # urllib's own "digest auth failed" (after six tries) carries an empty str body, not bytes.
        body = error.read()
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        result = {"status": error.code, "body": body}
    except Exception as error:  # noqa: BLE001 - reported to the test, which decides
        result = {"status": 0, "body": "", "error": f"{type(error).__name__}: {error}"}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
