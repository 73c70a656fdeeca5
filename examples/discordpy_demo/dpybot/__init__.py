"""A small discord.py bot whose cogs use ormar models, with its settings in pyproject.toml."""
