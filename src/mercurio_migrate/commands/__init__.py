"""CLI subcommands that live in their own modules; `cli.LazyGroup` imports them only when run.

Each module imports `pass_context` and `Context` from `mercurio_migrate.cli` and defines click commands.
"""
