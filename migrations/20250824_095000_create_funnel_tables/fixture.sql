-- Fixture: funnels with ordered steps in both tenants, and one funnel without steps

INSERT INTO funnel (tenant_id, workspace_id, name, description, created_at)
SELECT t.id, w.id, f.name, f.description, f.created::timestamptz
FROM (VALUES
    ('Acme Fixtures', 'Signup funnel', 'Landing to signup', '2025-06-01T00:00:00Z'),
    ('Acme Fixtures', 'Empty funnel', NULL, '2025-06-02T00:00:00Z'),
    ('Globex Fixtures', 'Checkout funnel', 'Cart to purchase', '2025-06-03T00:00:00Z')
) AS f(tenant, name, description, created)
JOIN tenant t ON t.name = f.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = 'Production';

INSERT INTO funnel_step (funnel_id, order_index, type, label, match_rule)
SELECT f.id, s.order_index, s.type, s.label, s.match_rule::jsonb
FROM (VALUES
    ('Signup funnel', 0, 'page_view', 'Landing page', '{"path": "/"}'),
    ('Signup funnel', 1, 'page_view', 'Pricing page', '{"path": "/pricing"}'),
    ('Signup funnel', 2, 'event', 'Signed up', '{"event_name": "signup"}'),
    ('Checkout funnel', 0, 'event', 'Added to cart', '{"event_name": "add_to_cart"}'),
    ('Checkout funnel', 1, 'event', 'Purchased', '{"event_name": "purchase"}')
) AS s(funnel, order_index, type, label, match_rule)
JOIN funnel f ON f.name = s.funnel;
