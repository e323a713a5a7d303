-- Fixture: anonymous visitors in both fixture tenants (leads follow once the PII functions exist)

INSERT INTO visitor (anonymous_id, tenant_id, workspace_id, first_seen_at, last_seen_at, first_utm, last_device)
SELECT v.anonymous_id, t.id, w.id, v.first_seen::timestamptz, v.last_seen::timestamptz, v.utm::jsonb, v.device::jsonb
FROM (VALUES
    ('a_fxAcmeVis001', 'Acme Fixtures', 'Production', '2025-07-01T10:00:00Z', '2025-08-20T09:00:00Z',
     '{"source": "newsletter"}', '{"type": "desktop"}'),
    ('a_fxAcmeVis002', 'Acme Fixtures', 'Production', '2025-07-02T11:00:00Z', '2025-07-02T11:05:00Z',
     NULL, '{"type": "mobile"}'),
    ('a_fxGlobVis001', 'Globex Fixtures', 'Production', '2025-07-03T12:00:00Z', '2025-08-21T08:00:00Z',
     '{"source": "ads"}', NULL)
) AS v(anonymous_id, tenant, workspace, first_seen, last_seen, utm, device)
JOIN tenant t ON t.name = v.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = v.workspace;
