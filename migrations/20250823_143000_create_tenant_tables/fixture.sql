-- Fixture: two tenants with workspaces and API keys, so later fixtures can show tenant isolation

INSERT INTO tenant (name, status) VALUES
    ('Acme Fixtures', 'active'),
    ('Globex Fixtures', 'active'),
    ('Initech Fixtures', 'suspended');

INSERT INTO workspace (tenant_id, name)
SELECT t.id, w.name
FROM tenant t
CROSS JOIN (VALUES ('Production'), ('Staging')) AS w(name)
WHERE t.name IN ('Acme Fixtures', 'Globex Fixtures');

INSERT INTO api_key (workspace_id, name, key_hash, scopes, revoked_at)
SELECT w.id, k.name, k.key_hash, k.scopes::jsonb, k.revoked_at::timestamptz
FROM workspace w
JOIN tenant t ON t.id = w.tenant_id
CROSS JOIN (VALUES
    ('ingest', '$2b$12$fixturefixturefixturefixtureingestkeyhashvalue000000', '["events:write"]', NULL),
    ('old-ingest', '$2b$12$fixturefixturefixturefixtureoldkeyhashvalue000000000', '["events:write"]', '2025-08-01T00:00:00Z')
) AS k(name, key_hash, scopes, revoked_at)
WHERE t.name IN ('Acme Fixtures', 'Globex Fixtures') AND w.name = 'Production';
