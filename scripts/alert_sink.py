"""A stand-in pager for the compose stack: Alertmanager's webhook posts here, one line per alert.

`docker compose logs -f alert-sink` shows what would have paged. Stdlib only, so it runs in the
traffic generator's image. Replace it by pointing prometheus/alertmanager.yml at a real receiver.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertSink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self.send_error(400, "body is not JSON")
            return
        for alert in payload.get("alerts", []):
            line = {
                "status": alert.get("status"),
                "alertname": alert.get("labels", {}).get("alertname"),
                "labels": alert.get("labels", {}),
                "summary": alert.get("annotations", {}).get("summary"),
                "runbook": alert.get("annotations", {}).get("runbook"),
                "startsAt": alert.get("startsAt"),
            }
            print(json.dumps(line), flush=True)
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:  # health check
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:  # keep stdout for alerts only
        pass


def main() -> None:
    host = os.environ.get("ALERT_SINK_HOST", "0.0.0.0")
    port = int(os.environ.get("ALERT_SINK_PORT", "9095"))
    print(f"alert-sink listening on {host}:{port}", file=sys.stderr, flush=True)
    ThreadingHTTPServer((host, port), AlertSink).serve_forever()


if __name__ == "__main__":
    main()
