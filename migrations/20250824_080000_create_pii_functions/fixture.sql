-- Fixture: leads with PII encrypted and fingerprinted by the functions (needs MERCURIO_PII_KEY and
-- MERCURIO_HMAC_KEY), linked to the fixture visitors

INSERT INTO lead (tenant_id, workspace_id, email_enc, email_fingerprint, phone_enc, phone_fingerprint,
                  first_name_enc, last_name_enc, created_at)
SELECT
    t.id,
    w.id,
    encrypt_pii(l.email),
    hmac_sha256(l.email, get_hmac_key()),
    encrypt_pii(l.phone),
    hmac_sha256(l.phone, get_hmac_key()),
    encrypt_pii(l.first_name),
    encrypt_pii(l.last_name),
    l.created::timestamptz
FROM (VALUES
    ('Acme Fixtures', 'ada@acme.example', '+44 20 7946 0001', 'Ada', 'Lovelace', '2025-08-20T09:02:00Z'),
    ('Acme Fixtures', NULL, '+1 (555) 010-0002', NULL, NULL, '2025-08-20T10:00:00Z'),
    ('Globex Fixtures', 'grace@globex.example', NULL, 'Grace', 'Hopper', '2025-08-21T08:00:00Z')
) AS l(tenant, email, phone, first_name, last_name, created)
JOIN tenant t ON t.name = l.tenant
JOIN workspace w ON w.tenant_id = t.id AND w.name = 'Production';

INSERT INTO identity_link (tenant_id, workspace_id, anonymous_id, lead_id, linked_at, confidence_score)
SELECT v.tenant_id, v.workspace_id, v.anonymous_id, l.id, l.created_at, k.confidence
FROM (VALUES
    ('a_fxAcmeVis001', 'ada@acme.example', 1.0),
    ('a_fxGlobVis001', 'grace@globex.example', 0.9)
) AS k(anonymous_id, email, confidence)
JOIN visitor v ON v.anonymous_id = k.anonymous_id
JOIN lead l ON l.tenant_id = v.tenant_id AND l.workspace_id = v.workspace_id
           AND l.email_fingerprint = hmac_sha256(k.email, get_hmac_key());
