"""The applications, built on the core: models, training, recipes, sweep, reproduce, cli.

They use the core (everything in ``trajprobe/`` outside ``apps/``) and are never imported
by it; within them, ``cli > reproduce > sweep > recipes > training > models`` (import
contracts in ``pyproject.toml``, checked in CI).
"""
