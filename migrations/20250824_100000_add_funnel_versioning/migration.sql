-- Migration: Add versioning system to funnels
-- Purpose: Support draft/published states with immutable snapshots
-- Author: Development Team
-- Date: 2025-08-24
-- Requirements: 6.1, 6.2, 6.3

BEGIN;

-- Create funnel_version table
CREATE TABLE funnel_version (
    id BIGSERIAL PRIMARY KEY,
    funnel_id BIGINT NOT NULL REFERENCES funnel(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    state VARCHAR(20) DEFAULT 'draft' CHECK (state IN ('draft', 'published', 'archived')),
    created_by BIGINT, -- Will reference user table when implemented
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    
    UNIQUE(funnel_id, version)
);

-- Create funnel_publication table for immutable snapshots
CREATE TABLE funnel_publication (
    id BIGSERIAL PRIMARY KEY,
    funnel_id BIGINT NOT NULL REFERENCES funnel(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    published_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    window_days INTEGER DEFAULT 7 CHECK (window_days > 0),
    notes TEXT,
    snapshot_data JSONB NOT NULL -- Complete funnel definition at publication time
);

-- Migrate existing funnels to versioned structure
INSERT INTO funnel_version (funnel_id, version, state, created_at)
SELECT 
    id,
    1, -- First version
    'published', -- Assume existing funnels are published
    created_at
FROM funnel;

-- Create initial publications for existing funnels
INSERT INTO funnel_publication (funnel_id, version, published_at, notes, snapshot_data)
SELECT 
    f.id,
    1,
    f.created_at,
    'Initial migration from legacy funnel structure',
    jsonb_build_object(
        'funnel_id', f.id,
        'name', f.name,
        'description', f.description,
        'steps', COALESCE(
            (SELECT jsonb_agg(
                jsonb_build_object(
                    'id', fs.id,
                    'order_index', fs.order_index,
                    'type', fs.type,
                    'label', fs.label
                )
                ORDER BY fs.order_index
            )
            FROM funnel_step fs 
            WHERE fs.funnel_id = f.id), 
            '[]'::jsonb
        )
    )
FROM funnel f;

-- Add foreign key from funnel_step to funnel_version instead of funnel
ALTER TABLE funnel_step 
ADD COLUMN funnel_version_id BIGINT REFERENCES funnel_version(id) ON DELETE CASCADE;

-- Update existing funnel_step records to reference the version
UPDATE funnel_step 
SET funnel_version_id = fv.id
FROM funnel_version fv
WHERE funnel_step.funnel_id = fv.funnel_id AND fv.version = 1;

-- Make funnel_version_id NOT NULL after data migration
ALTER TABLE funnel_step ALTER COLUMN funnel_version_id SET NOT NULL;

-- Drop old foreign key constraint
ALTER TABLE funnel_step DROP CONSTRAINT IF EXISTS funnel_step_funnel_id_fkey;
ALTER TABLE funnel_step DROP COLUMN funnel_id;

-- Create indexes for efficient queries
CREATE INDEX idx_funnel_version_funnel ON funnel_version(funnel_id, version DESC);
CREATE INDEX idx_funnel_version_state ON funnel_version(funnel_id, state) WHERE state = 'published';
CREATE INDEX idx_funnel_publication_funnel ON funnel_publication(funnel_id, published_at DESC);
CREATE INDEX idx_funnel_step_version ON funnel_step(funnel_version_id, order_index);

-- Add table comments
COMMENT ON TABLE funnel_version IS 'Versioned funnel definitions - external ID: fv_{id}';
COMMENT ON TABLE funnel_publication IS 'Immutable funnel snapshots for analytics - external ID: fp_{id}';

COMMIT;
