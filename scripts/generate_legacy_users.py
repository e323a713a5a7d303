#!/usr/bin/env python3
"""Fill legacy_user_table with N sample legacy users (some dirty) to exercise Example 4 end to end.

    DATABASE_URL=postgresql://… python scripts/generate_legacy_users.py 10000 --dirty-fraction 0.02

Needs the schema up to 20250824_081000_create_legacy_user_table. Creates (or reuses) tenants named
"Legacy Tenant <n>" with workspaces "Legacy Workspace <m>". Rows are generated server-side with
generate_series and are deterministic for a given --seed. A dirty row is one of: an anonymous id that
fails ^a_[a-zA-Z0-9]{12}$, a missing workspace, an e-mail repeating another user's in other case and
spacing, a phone repeating another user's in another format, or an anonymous id also used in another
tenant or workspace. Then run `mercurio-migrate preflight` to see them.
"""

from __future__ import annotations

import argparse
import os
import sys

GENERATE_SQL = """
WITH scopes AS (
    SELECT row_number() OVER (ORDER BY w.id) - 1 AS n, w.tenant_id, w.id AS workspace_id
    FROM workspace w JOIN tenant t ON t.id = w.tenant_id
    WHERE t.name LIKE 'Legacy Tenant %%' AND w.name LIKE 'Legacy Workspace %%'
), base AS (
    SELECT
        i,
        ('x' || substr(md5(%(seed)s || ':' || i), 1, 8))::bit(32)::bigint AS h,
        ('x' || substr(md5(%(seed)s || ':dirty:' || i), 1, 8))::bit(32)::bigint & 2147483647 AS d,
        substr(md5(%(seed)s || ':anon:' || i), 1, 12) AS anon
    FROM generate_series(1, %(count)s) AS i
), shaped AS (
    SELECT
        b.*,
        s.tenant_id,
        s.workspace_id,
        (b.d %% 1000000) < %(dirty_ppm)s AS dirty,
        (b.d / 1000000) %% 5 AS dirty_kind,
        b.h %% 10 AS shape
    FROM base b
    JOIN scopes s ON s.n = b.i %% (SELECT count(*) FROM scopes)
)
INSERT INTO legacy_user_table (tenant_id, workspace_id, email, phone, first_name, last_name, anonymous_id, created_at)
SELECT
    tenant_id,
    CASE WHEN dirty AND dirty_kind = 1 THEN NULL ELSE workspace_id END,
    CASE
        WHEN dirty AND dirty_kind = 2 AND i > %(scope_count)s THEN '  User' || (i - %(scope_count)s) || '@Example.COM '
        WHEN shape < 8 THEN 'user' || i || '@example.com'
    END,
    CASE
        WHEN dirty AND dirty_kind = 3 AND i > %(scope_count)s
            THEN '+1 (555) ' || lpad(((i - %(scope_count)s) %% 10000000)::text, 7, '0')
        WHEN shape >= 5 THEN '+1555' || lpad((i %% 10000000)::text, 7, '0')
    END,
    CASE WHEN shape <> 3 THEN 'First' || i END,
    CASE WHEN shape <> 4 THEN 'Last' || i END,
    CASE
        WHEN dirty AND dirty_kind = 0 THEN (ARRAY['a_short', 'A_' || anon, 'a-' || anon, 'a_' || anon || 'x', ''])[1 + h %% 5]
        WHEN dirty AND dirty_kind = 4 AND i > 1 THEN 'a_' || substr(md5(%(seed)s || ':anon:' || (i - 1)), 1, 12)
        WHEN shape < 7 THEN 'a_' || anon
    END,
    TIMESTAMPTZ '2023-01-01 00:00:00+00' + (i || ' minutes')::interval
FROM shaped
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, metavar="N", help="number of legacy users to insert")
    parser.add_argument("--dirty-fraction", type=float, default=0.0, metavar="F",
                        help="share of dirty rows, 0 to 1 (default 0)")
    parser.add_argument("--tenants", type=int, default=2, help="tenants to spread users over (default 2)")
    parser.add_argument("--workspaces", type=int, default=2, help="workspaces per tenant (default 2)")
    parser.add_argument("--seed", default="mercurio", help="seed for the deterministic generator")
    args = parser.parse_args(argv)
    if args.count < 1 or not 0 <= args.dirty_fraction <= 1 or args.tenants < 2 or args.workspaces < 1:
        parser.error("N must be at least 1, --dirty-fraction within 0..1, --tenants at least 2 "
                     "(a shared anonymous id needs two), --workspaces at least 1")
    url = os.environ.get("DATABASE_URL")
    if not url:
        parser.error("set DATABASE_URL to the database to fill (e.g. the output of `mercurio-migrate db url`)")

    import psycopg

    try:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT to_regclass('legacy_user_table')").fetchone()[0] is None:
                print("error: legacy_user_table does not exist: apply migrations up to "
                      "20250824_081000_create_legacy_user_table first", file=sys.stderr)
                return 2
            for t in range(1, args.tenants + 1):
                tenant_id = conn.execute(
                    "SELECT id FROM tenant WHERE name = %s ORDER BY id LIMIT 1", (f"Legacy Tenant {t}",)).fetchone()
                if tenant_id is None:
                    tenant_id = conn.execute("INSERT INTO tenant (name) VALUES (%s) RETURNING id",
                                             (f"Legacy Tenant {t}",)).fetchone()
                for w in range(1, args.workspaces + 1):
                    conn.execute("INSERT INTO workspace (tenant_id, name) VALUES (%s, %s) "
                                 "ON CONFLICT (tenant_id, name) DO NOTHING", (tenant_id[0], f"Legacy Workspace {w}"))
            scope_count = args.tenants * args.workspaces
            inserted = conn.execute(GENERATE_SQL, {
                "seed": args.seed, "count": args.count, "dirty_ppm": round(args.dirty_fraction * 1_000_000),
                "scope_count": scope_count,
            }).rowcount
    except psycopg.Error as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"inserted {inserted} legacy users over {args.tenants} tenants x {args.workspaces} workspaces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
