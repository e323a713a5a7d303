-- Plans: tenant, workspace and API key lookups (explain checks each query uses the index it names)

-- Scheduler: how many tenants are active
-- expect-index: idx_tenant_status
SELECT count(*) FROM tenant WHERE status = 'active';

-- Plan limits: how many workspaces a tenant has
-- expect-index: idx_workspace_tenant
SELECT count(*) FROM workspace WHERE tenant_id = 2;

-- API key management page of a workspace
-- expect-index: idx_api_key_workspace
SELECT id, name, scopes, last_used_at FROM api_key WHERE workspace_id = 7 AND revoked_at IS NULL;

-- Request authentication: the live key with this hash
-- expect-index: idx_api_key_hash
SELECT id, workspace_id, scopes FROM api_key WHERE key_hash = 'key_hash-7' AND revoked_at IS NULL;
