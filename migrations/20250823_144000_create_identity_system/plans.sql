-- Plans: visitor, lead and identity link lookups, all scoped by tenant and workspace

-- Dashboard: visitors of a workspace
-- expect-index: idx_visitor_tenant_workspace
SELECT count(*) FROM visitor WHERE tenant_id = 2 AND workspace_id = 7;

-- Visitor list, most recently seen first
-- expect-index: idx_visitor_last_seen
SELECT anonymous_id, last_seen_at, last_utm, last_device
FROM visitor
WHERE tenant_id = 2 AND workspace_id = 7
ORDER BY last_seen_at DESC
LIMIT 20;

-- Dashboard: leads of a workspace
-- expect-index: idx_lead_tenant_workspace
SELECT count(*) FROM lead WHERE tenant_id = 2 AND workspace_id = 7;

-- Identify: every lead (canonical or duplicate) with this e-mail fingerprint
-- expect-index: idx_lead_email_fingerprint
SELECT id, merged_into_id, created_at
FROM lead
WHERE tenant_id = 2 AND workspace_id = 7 AND email_fingerprint = 'email_fingerprint-7';

-- Identify: every lead with this phone fingerprint
-- expect-index: idx_lead_phone_fingerprint
SELECT id, merged_into_id, created_at
FROM lead
WHERE tenant_id = 2 AND workspace_id = 7 AND phone_fingerprint = 'phone_fingerprint-7';

-- Which leads has this visitor been linked to
-- expect-index: idx_identity_link_anonymous
SELECT lead_id, linked_at, confidence_score
FROM identity_link
WHERE tenant_id = 2 AND workspace_id = 7 AND anonymous_id = 'a_000000000007';

-- Which visitors belong to this lead
-- expect-index: idx_identity_link_lead
SELECT anonymous_id, linked_at, confidence_score
FROM identity_link
WHERE tenant_id = 2 AND workspace_id = 7 AND lead_id = 7;
