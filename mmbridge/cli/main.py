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
from .view import register as register_view

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
register_view(app)

#: exit code for mistakes the user can fix (bad input, bad config, missing package), as click does
USER_ERROR = 2


def _usage_failure(exc: Exception) -> int | None:
    """The exit code for click's own failures (bad options, --help with no command), after saying so;
    None for any other exception. Matched by class name: typer may vendor its own copy of click."""
    kinds = {kind.__name__ for kind in type(exc).__mro__}
    if "NoArgsIsHelpError" in kinds or ("ClickException" in kinds and "UsageError" not in kinds):
        exc.show()  # type: ignore[attr-defined]
        return USER_ERROR if "NoArgsIsHelpError" in kinds else exc.exit_code  # type: ignore[attr-defined]
    if "UsageError" in kinds:  # a bad option or argument: one line, and where to read more
        ctx = exc.ctx  # type: ignore[attr-defined]
        where = f" (see {ctx.command_path} --help)" if ctx else ""
        print(f"error: {exc.format_message()}{where}", file=sys.stderr)  # type: ignore[attr-defined]
        return USER_ERROR
    if "Abort" in kinds:
        print("interrupted", file=sys.stderr)
        return 130
    return None


def main() -> None:
    """Run the CLI: user errors print one line on stderr and exit 2; provider failures exit 1."""
    from ..errors import MMBridgeError, ProviderError

    try:
        code = app(standalone_mode=False)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except MMBridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        failure = _usage_failure(exc)
        if failure is None:
            raise
        sys.exit(failure)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
