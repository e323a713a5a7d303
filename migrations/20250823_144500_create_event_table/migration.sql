-- Migration: Create event table
-- Purpose: Store tracked events per tenant and workspace (the table Example 3 indexes)
-- Author: Development Team
-- Date: 2025-08-23
-- Requirements: 5.1, 5.4, 5.5

BEGIN;

-- Create event table; anonymous_id has no foreign key because events may arrive before their visitor row
CREATE TABLE event (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    workspace_id BIGINT NOT NULL REFERENCES workspace(id) ON DELETE CASCADE,
    anonymous_id VARCHAR(50) NOT NULL,
    lead_id BIGINT REFERENCES lead(id) ON DELETE SET NULL,
    session_id VARCHAR(100),
    event_name VARCHAR(255) NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    props JSONB,
    received_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

-- Time, visitor, lead, conversion and session indexes come from 20250823_145000_add_event_system_indexes;
-- this one serves per-event-name analytics, which that migration does not cover
CREATE INDEX idx_event_tenant_name_timestamp ON event(tenant_id, workspace_id, event_name, timestamp DESC);

-- Add table comments
COMMENT ON TABLE event IS 'Tracked events (page views, signups, purchases) - external ID: ev_{id}';

-- Add column comments
COMMENT ON COLUMN event.anonymous_id IS 'Client-generated visitor ID with format a_{12_chars}';
COMMENT ON COLUMN event.timestamp IS 'When the event happened on the client';
COMMENT ON COLUMN event.received_at IS 'When the server received the event';
COMMENT ON COLUMN event.props IS 'Event properties as sent by the client';

COMMIT;
