"""A small nextcord bot whose cogs use ormar models; the example for nxalembic-templates."""
