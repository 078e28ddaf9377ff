"""The ``mmbridge`` entry point: the typer app, and one place that turns errors into exit codes."""

from __future__ import annotations

import sys

import typer

from .ask import register as register_ask
from .batch import register as register_batch
from .cache import register as register_cache
from .cascade import register as register_cascade
from .data import register as register_data
from .evaluate import register as register_eval
from .info import register as register_info
from .serve import register as register_serve
from .train import register as register_train

app = typer.Typer(
    name="mmbridge",
    help="Ask local and hosted vision-language models about images, through one interface.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs ~0.25 s of imports
)
register_ask(app)
register_info(app)
register_data(app)
register_cache(app)
register_eval(app)
register_batch(app)
register_cascade(app)
register_train(app)
register_serve(app)

#: exit code for mistakes the user can fix (bad input, bad config, missing package), as click does
USER_ERROR = 2


def main() -> None:
    """Run the CLI: user errors print one line on stderr and exit 2; provider failures exit 1."""
    from ..errors import MMBridgeError, ProviderError

    try:
        app()
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except MMBridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
