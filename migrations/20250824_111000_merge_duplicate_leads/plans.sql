-- Plans: canonical leads and their duplicates (duplicate policy, docs/mercurio-schema.md)

-- Identify: the canonical lead for an e-mail fingerprint
-- expect-index: uq_lead_email_fingerprint
SELECT id
FROM lead
WHERE tenant_id = 2 AND workspace_id = 7 AND email_fingerprint = 'email_fingerprint-7'
  AND merged_into_id IS NULL;

-- Identify: the canonical lead for a phone fingerprint, among leads without an e-mail
-- expect-index: uq_lead_phone_fingerprint
SELECT id
FROM lead
WHERE tenant_id = 2 AND workspace_id = 7 AND phone_fingerprint = 'phone_fingerprint-7'
  AND email_fingerprint IS NULL AND merged_into_id IS NULL;

-- Merge view: the duplicates of a canonical lead
-- expect-index: idx_lead_merged_into
SELECT id, created_at
FROM lead
WHERE tenant_id = 2 AND workspace_id = 7 AND merged_into_id = 7;
