-- Fixture: events of the fixture visitors: page views, a conversion, with and without session and props

INSERT INTO event (tenant_id, workspace_id, anonymous_id, session_id, event_name, timestamp, props)
SELECT t.id, w.id, e.anonymous_id, e.session_id, e.event_name, e.at::timestamptz, e.props::jsonb
FROM (VALUES
    ('Acme Fixtures', 'a_fxAcmeVis001', 's_fx_1', 'page_view', '2025-08-20T09:00:00Z', '{"path": "/pricing"}'),
    ('Acme Fixtures', 'a_fxAcmeVis001', 's_fx_1', 'signup', '2025-08-20T09:02:00Z', '{"plan": "pro"}'),
    ('Acme Fixtures', 'a_fxAcmeVis002', NULL, 'page_view', '2025-07-02T11:05:00Z', NULL),
    ('Globex Fixtures', 'a_fxGlobVis001', 's_fx_2', 'purchase', '2025-08-21T08:00:00Z', '{"amount": 49.0}')
) AS e(tenant, anonymous_id, session_id, event_name, at, props)
JOIN tenant t ON t.name = e.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = 'Production';
