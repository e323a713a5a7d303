-- Migration: Create tenant and workspace tables
-- Purpose: Establish multi-tenant foundation with proper isolation
-- Author: Development Team
-- Date: 2025-08-23
-- Requirements: 3.1, 3.2, 3.3

BEGIN;

-- Create tenant table
CREATE TABLE tenant (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    status VARCHAR(50) DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Create workspace table with tenant relationship
CREATE TABLE workspace (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    
    -- Ensure unique workspace names per tenant
    UNIQUE(tenant_id, name)
);

-- Create API key table for workspace authentication
CREATE TABLE api_key (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    key_hash VARCHAR(255) NOT NULL,
    scopes JSONB DEFAULT '[]'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    last_used_at TIMESTAMP WITH TIME ZONE,
    revoked_at TIMESTAMP WITH TIME ZONE,
    
    -- Ensure unique key names per workspace
    UNIQUE(workspace_id, name)
);

-- Create indexes for efficient queries
CREATE INDEX idx_tenant_status ON tenant(status) WHERE status = 'active';
CREATE INDEX idx_workspace_tenant ON workspace(tenant_id);
CREATE INDEX idx_api_key_workspace ON api_key(workspace_id);
CREATE INDEX idx_api_key_hash ON api_key(key_hash) WHERE revoked_at IS NULL;

-- Add table comments for documentation
COMMENT ON TABLE tenant IS 'Top-level tenant organization - external ID: tn_{id}';
COMMENT ON TABLE workspace IS 'Workspace within a tenant for data isolation - external ID: ws_{id}';
COMMENT ON TABLE api_key IS 'API keys for workspace authentication - external ID: ak_{id}';

-- Add column comments
COMMENT ON COLUMN tenant.status IS 'Tenant status: active, suspended, or deleted';
COMMENT ON COLUMN api_key.key_hash IS 'bcrypt hash of the API key';
COMMENT ON COLUMN api_key.scopes IS 'JSON array of permitted scopes';

COMMIT;
