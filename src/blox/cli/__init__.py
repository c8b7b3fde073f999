"""blox: the command line. `main.main` is the console script."""

__all__: list[str] = []
