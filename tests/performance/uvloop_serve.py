"""`eventbridge serve` on uvloop instead of the stock asyncio loop (benchmark option only).

`eventbridge serve` starts its loop with `asyncio.run`, so uvicorn never installs uvloop even
though `uvicorn[standard]` brings it. `bench_live --server-loop uvloop` runs the same service
through this module to show what the event loop alone is worth. Settings come from the
`EVENTBRIDGE_*` environment, exactly as for `eventbridge serve`.
"""

from __future__ import annotations

import sys

import uvloop

from bridge.cli.logs import configure_logging
from bridge.edge.server import serve
from bridge.settings import Settings


def main() -> int:
    """Run the bridge service on uvloop until SIGTERM."""
    settings = Settings()
    configure_logging(settings.log_level)
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
