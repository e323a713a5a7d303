-- Plans: the legacy users of one workspace still waiting for migration

-- expect-index: idx_legacy_user_tenant_workspace
SELECT id, email, phone, anonymous_id, created_at
FROM legacy_user_table
WHERE tenant_id = 7 AND workspace_id = 7 AND migrated_at IS NULL;
