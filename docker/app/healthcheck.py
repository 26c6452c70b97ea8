"""The containers' health check: an HTTP GET that must answer 200 (python has no curl).

usage: healthcheck.py URL
"""

import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=3) as answer:  # noqa: S310 - loopback URL
    sys.exit(0 if answer.status == 200 else 1)
