"""python -m gateway: serve the HTTP API with uvicorn on config.http_host:config.http_port."""

import argparse

import uvicorn

from gateway.app import create_app
from gateway.config import GatewayConfig
from services.runtime.logs import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.parse_args(argv)
    config = GatewayConfig()
    configure_logging("gateway", config.log_level)
    # uvicorn handles SIGINT/SIGTERM (graceful shutdown runs the lifespan's exit); its loggers
    # propagate to our JSON handler; the gateway writes its own access log line per request.
    uvicorn.run(
        create_app(config),
        host=config.http_host,
        port=config.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=config.forwarded_allow_ips,
        server_header=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
