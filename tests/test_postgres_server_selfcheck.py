"""Self-check: the throwaway PostgreSQL server works with both drivers the suite uses."""

import asyncio

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from postgres_server import PostgresServer


async def _async_select_one(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("select 1"))).scalar_one()
    finally:
        await engine.dispose()


def test_postgres_server_selfcheck() -> None:
    with PostgresServer() as pg:
        pg.create_database("selfcheck")

        engine = create_engine(pg.url("selfcheck", driver="psycopg"))
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select current_database()")).scalar_one() == "selfcheck"
        engine.dispose()

        assert asyncio.run(_async_select_one(pg.url("selfcheck"))) == 1

        pg.password = "wrong-pw"  # url() now carries a bad password
        with pytest.raises(Exception, match="password authentication failed"):
            create_engine(pg.url("selfcheck", driver="psycopg")).connect()
        with pytest.raises(Exception, match="password authentication failed"):
            asyncio.run(_async_select_one(pg.url("selfcheck")))
        pg.password = "s3cret-pw"

        pg.drop_database("selfcheck")
        assert pg.psql("select count(*) from pg_database where datname = 'selfcheck'").strip() == "0"
