-- Fixture: clean legacy users that Example 4 can migrate, chosen to show its two seed defects:
-- an anonymous ID shared by Acme and Globex users (cross-tenant linkage, fixed by 20250824_110000) and one
-- e-mail written two ways in one workspace (duplicate leads, merged by 20250824_111000)

INSERT INTO legacy_user_table (tenant_id, workspace_id, email, phone, first_name, last_name, anonymous_id, created_at)
SELECT t.id, w.id, u.email, u.phone, u.first_name, u.last_name, u.anonymous_id, u.created::timestamptz
FROM (VALUES
    ('Acme Fixtures', 'carol@acme.example', '+1 555 010 0100', 'Carol', 'Danvers', 'a_fxLegacy0001', '2024-01-05T08:00:00Z'),
    ('Acme Fixtures', 'dave@acme.example', NULL, 'Dave', NULL, NULL, '2024-01-06T08:00:00Z'),
    ('Acme Fixtures', NULL, '0044 20 7946 0100', NULL, NULL, 'a_fxLegacy0002', '2024-01-07T08:00:00Z'),
    ('Acme Fixtures', '  Erin@Acme.example ', NULL, 'Erin', 'Ek', 'a_fxLegacy0003', '2024-01-08T08:00:00Z'),
    ('Acme Fixtures', 'erin@acme.example', NULL, 'Erin', 'Ek', 'a_fxLegacy0004', '2024-02-08T08:00:00Z'),
    ('Acme Fixtures', NULL, NULL, NULL, NULL, 'a_fxLegacy0005', '2024-01-09T08:00:00Z'),
    ('Globex Fixtures', 'frank@globex.example', NULL, 'Frank', 'Fu', 'a_fxLegacy0001', '2024-03-01T08:00:00Z')
) AS u(tenant, email, phone, first_name, last_name, anonymous_id, created)
JOIN tenant t ON t.name = u.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = 'Production';
