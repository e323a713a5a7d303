-- Plans: funnel list of a workspace

-- Newest funnels first
-- expect-index: idx_funnel_tenant_workspace
SELECT id, name, description, created_at
FROM funnel
WHERE tenant_id = 2 AND workspace_id = 7
ORDER BY created_at DESC
LIMIT 20;
