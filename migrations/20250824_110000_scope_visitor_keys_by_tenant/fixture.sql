-- Fixture: the same client-generated anonymous ID in two tenants, now two separate visitors

INSERT INTO visitor (anonymous_id, tenant_id, workspace_id, first_seen_at, last_seen_at)
SELECT 'a_fxSharedId01', t.id, w.id, v.first_seen::timestamptz, v.first_seen::timestamptz
FROM (VALUES ('Acme Fixtures', '2025-08-22T10:00:00Z'), ('Globex Fixtures', '2025-08-22T11:00:00Z')) AS v(tenant, first_seen)
JOIN tenant t ON t.name = v.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = 'Staging';
