"""Run the simulator alone: ``python -m simulator --port 8100 --dir /tmp/sim --api-key KEY``."""

from __future__ import annotations

import argparse

from .app import ANTHROPIC_URL_PREFIX, URL_PREFIX, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the batch API simulator: OpenAI's dialect at /simulator/v1, Anthropic's at "
        "/simulator/anthropic/v1."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--dir", help="state directory (default: a new temp dir)")
    parser.add_argument(
        "--api-key",
        help="the key clients must send (OpenAI: bearer key; Anthropic: x-api-key) (default: a new random one)",
    )
    parser.add_argument("--control", action="store_true", help="serve /_control (fault injection, for tests)")
    parser.add_argument("--validating", type=float, help="seconds in validating (default 1.0)")
    parser.add_argument("--in-progress", type=float, help="seconds in in_progress (default 5.0)")
    parser.add_argument("--finalizing", type=float, help="seconds in finalizing (default 1.0)")
    args = parser.parse_args(argv)
    overrides = {
        "SIMULATOR_DIR": args.dir,
        "SIMULATOR_API_KEY": args.api_key,
        "SIMULATOR_CONTROL": args.control or None,
        "SIMULATOR_VALIDATING_SECONDS": args.validating,
        "SIMULATOR_IN_PROGRESS_SECONDS": args.in_progress,
        "SIMULATOR_FINALIZING_SECONDS": args.finalizing,
    }
    app = create_app({key: value for key, value in overrides.items() if value is not None})
    root = f"http://{args.host}:{args.port}"
    print(
        f"simulator: OpenAI dialect {root}{URL_PREFIX}, Anthropic dialect (SDK base URL) "
        f"{root}{ANTHROPIC_URL_PREFIX.removesuffix('/v1')} (state in {app.config['SIMULATOR_DIR']}); "
        f"API key {app.config['SIMULATOR_API_KEY']}"
    )
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
