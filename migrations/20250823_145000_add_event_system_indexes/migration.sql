-- Migration: Add optimized indexes for event system
-- Purpose: Improve query performance for event analytics
-- Author: Development Team
-- Date: 2025-08-23
-- Requirements: 5.4, 5.5

BEGIN;

-- Add composite indexes for common query patterns
CREATE INDEX CONCURRENTLY idx_event_tenant_timestamp 
ON event(tenant_id, workspace_id, timestamp DESC);

CREATE INDEX CONCURRENTLY idx_event_anonymous_timestamp 
ON event(tenant_id, workspace_id, anonymous_id, timestamp DESC);

CREATE INDEX CONCURRENTLY idx_event_lead_timestamp 
ON event(tenant_id, workspace_id, lead_id, timestamp DESC) 
WHERE lead_id IS NOT NULL;

-- Add partial index for specific event types
CREATE INDEX CONCURRENTLY idx_event_conversion 
ON event(tenant_id, workspace_id, timestamp DESC) 
WHERE event_name IN ('purchase', 'signup', 'conversion');

-- Add GIN index for JSONB properties search
CREATE INDEX CONCURRENTLY idx_event_props_gin 
ON event USING GIN (props) 
WHERE props IS NOT NULL;

-- Add index for session-based queries
CREATE INDEX CONCURRENTLY idx_event_session 
ON event(tenant_id, workspace_id, session_id, timestamp) 
WHERE session_id IS NOT NULL;

COMMIT;
