-- Verify: no identity link, visitor, lead or event crosses tenants, and the keys that enforce it exist

DO $$
DECLARE
    missing TEXT;
    crossing BIGINT;
BEGIN
    SELECT string_agg(name, ', ') INTO missing
    FROM unnest(ARRAY['visitor_pkey', 'identity_link_visitor_fkey', 'identity_link_lead_fkey',
                      'visitor_workspace_tenant_fkey', 'lead_workspace_tenant_fkey',
                      'event_workspace_tenant_fkey', 'event_lead_fkey']) AS name
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = name AND c.connamespace = current_schema()::regnamespace);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'tenant-scoping constraints missing: %', missing;
    END IF;
    IF (SELECT array_agg(a.attname::TEXT ORDER BY k.ord) FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conname = 'visitor_pkey' AND c.connamespace = current_schema()::regnamespace)
       IS DISTINCT FROM ARRAY['tenant_id', 'workspace_id', 'anonymous_id'] THEN
        RAISE EXCEPTION 'visitor_pkey is not (tenant_id, workspace_id, anonymous_id)';
    END IF;
    SELECT count(*) INTO crossing
    FROM identity_link il
    LEFT JOIN visitor v ON v.tenant_id = il.tenant_id AND v.workspace_id = il.workspace_id AND v.anonymous_id = il.anonymous_id
    JOIN lead l ON l.id = il.lead_id
    WHERE v.anonymous_id IS NULL OR l.tenant_id <> il.tenant_id OR l.workspace_id <> il.workspace_id;
    IF crossing > 0 THEN
        RAISE EXCEPTION '% identity_link row(s) cross tenants or workspaces', crossing;
    END IF;
END
$$;
