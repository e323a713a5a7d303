-- Migration: Create funnel and funnel step tables
-- Purpose: Conversion funnels per workspace, with ordered steps (the tables Example 5 versions)
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 6.1, 6.2

BEGIN;

-- Create funnel table
CREATE TABLE funnel (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    -- Ensure unique funnel names per workspace
    UNIQUE(tenant_id, workspace_id, name)
);

-- Create funnel step table. funnel_id carries only its foreign key: 20250824_100000_add_funnel_versioning
-- drops the column (and with it any index or constraint on it) and its rollback re-adds only the column
-- and the foreign key, so anything more here could not survive a round trip
CREATE TABLE funnel_step (
    id BIGSERIAL PRIMARY KEY,
    funnel_id BIGINT NOT NULL REFERENCES funnel(id) ON DELETE CASCADE,
    order_index INTEGER NOT NULL CHECK (order_index >= 0),
    type VARCHAR(50) NOT NULL CHECK (type IN ('page_view', 'event', 'custom')),
    label VARCHAR(255) NOT NULL,
    match_rule JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Create indexes for efficient tenant-scoped queries
CREATE INDEX idx_funnel_tenant_workspace ON funnel(tenant_id, workspace_id, created_at DESC);

-- Add table comments
COMMENT ON TABLE funnel IS 'Conversion funnels defined per workspace - external ID: fn_{id}';
COMMENT ON TABLE funnel_step IS 'Ordered steps of a funnel - external ID: fs_{id}';

-- Add column comments
COMMENT ON COLUMN funnel_step.order_index IS 'Position of the step in its funnel, from 0';
COMMENT ON COLUMN funnel_step.type IS 'Step kind: page_view, event or custom';
COMMENT ON COLUMN funnel_step.match_rule IS 'JSON rule an event must satisfy to complete the step';

COMMIT;
