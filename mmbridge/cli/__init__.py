"""The ``mmbridge`` command line (typer + rich); each command imports its heavy parts lazily."""
