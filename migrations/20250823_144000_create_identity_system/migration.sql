-- Migration: Create identity system tables
-- Purpose: Support anonymous visitors and identified leads with secure PII handling
-- Author: Development Team  
-- Date: 2025-08-23
-- Requirements: 4.1, 4.2, 4.3, 4.4, 4.5

BEGIN;

-- Create visitor table for anonymous tracking
CREATE TABLE visitor (
    anonymous_id VARCHAR(50) PRIMARY KEY CHECK (anonymous_id ~ '^a_[a-zA-Z0-9]{12}$'),
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    first_seen_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_seen_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    first_utm JSONB,
    last_utm JSONB,
    last_device JSONB,
    last_geo JSONB
);

-- Create lead table for identified users
CREATE TABLE lead (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    email_enc TEXT, -- AES encrypted email
    email_fingerprint VARCHAR(64), -- HMAC-SHA256 for matching
    phone_enc TEXT, -- AES encrypted phone
    phone_fingerprint VARCHAR(64), -- HMAC-SHA256 for matching
    first_name_enc TEXT, -- AES encrypted first name
    last_name_enc TEXT, -- AES encrypted last name
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    
    -- Ensure at least one identifier is present
    CHECK (email_enc IS NOT NULL OR phone_enc IS NOT NULL)
);

-- Create identity link table for anonymous-to-lead mapping
CREATE TABLE identity_link (
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    anonymous_id VARCHAR(50) NOT NULL REFERENCES visitor(anonymous_id) ON DELETE CASCADE,
    lead_id BIGINT NOT NULL REFERENCES lead(id) ON DELETE CASCADE,
    linked_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    confidence_score DECIMAL(3,2) DEFAULT 1.0 CHECK (confidence_score >= 0 AND confidence_score <= 1),
    
    PRIMARY KEY (tenant_id, workspace_id, anonymous_id, lead_id)
);

-- Create indexes for efficient tenant-scoped queries
CREATE INDEX idx_visitor_tenant_workspace ON visitor(tenant_id, workspace_id);
CREATE INDEX idx_visitor_last_seen ON visitor(tenant_id, workspace_id, last_seen_at DESC);

CREATE INDEX idx_lead_tenant_workspace ON lead(tenant_id, workspace_id);
CREATE INDEX idx_lead_email_fingerprint ON lead(tenant_id, workspace_id, email_fingerprint) 
    WHERE email_fingerprint IS NOT NULL;
CREATE INDEX idx_lead_phone_fingerprint ON lead(tenant_id, workspace_id, phone_fingerprint) 
    WHERE phone_fingerprint IS NOT NULL;

CREATE INDEX idx_identity_link_anonymous ON identity_link(tenant_id, workspace_id, anonymous_id);
CREATE INDEX idx_identity_link_lead ON identity_link(tenant_id, workspace_id, lead_id);

-- Add table comments
COMMENT ON TABLE visitor IS 'Anonymous visitors tracked by client-generated ID - external ID: anonymous_id';
COMMENT ON TABLE lead IS 'Identified leads with encrypted PII - external ID: ld_{id}';
COMMENT ON TABLE identity_link IS 'Links between anonymous visitors and identified leads';

-- Add column comments
COMMENT ON COLUMN visitor.anonymous_id IS 'Client-generated ID with format a_{12_chars}';
COMMENT ON COLUMN lead.email_fingerprint IS 'HMAC-SHA256 of email for secure matching';
COMMENT ON COLUMN lead.phone_fingerprint IS 'HMAC-SHA256 of phone for secure matching';
COMMENT ON COLUMN identity_link.confidence_score IS 'Matching confidence from 0.0 to 1.0';

COMMIT;
