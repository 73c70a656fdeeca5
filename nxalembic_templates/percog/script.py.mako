<%doc>
    nxalembic_templates escapes the message for this docstring (environment.write_revisions_safely)
    and passes the cog's name as `cog`; values outside the docstring are written with repr().
    Alembic renders upgrade() and downgrade() (between "commands auto generated" comments) for
    every revision env.py takes part in, even a blank one: a body without commands is `pass` alone.
</%doc><%!
    def body(text):
        commands = [line.strip() for line in (text or "").splitlines() if not line.strip().startswith("#")]
        return "pass" if commands in ([], ["pass"]) else text
%><%
    first = "(none: first revision of cog %s)" % context.get("cog", "?")
    parents = comma(down_revision) if down_revision else first
%>\
"""${message}

Cog revision ${up_revision}, parent: ${parents}
Created: ${create_date}
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# Identifiers Alembic reads; they are per cog (each cog has its own folder and version table).
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${body(upgrades)}


def downgrade() -> None:
    ${body(downgrades)}
