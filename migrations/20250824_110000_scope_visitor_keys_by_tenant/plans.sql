-- Plans: a visitor is found by tenant, workspace and anonymous id (the re-keyed primary key)

-- Track: load the visitor an incoming event belongs to
-- expect-index: visitor_pkey
SELECT first_seen_at, last_seen_at, first_utm, last_utm
FROM visitor
WHERE tenant_id = 2 AND workspace_id = 7 AND anonymous_id = 'a_000000000007';
