-- Rollback: Remove funnel versioning system
-- This reverses migration 20250824_100000_add_funnel_versioning
-- WARNING: This will lose version history but preserve current funnel state

BEGIN;

-- Re-add funnel_id column to funnel_step
ALTER TABLE funnel_step ADD COLUMN funnel_id BIGINT;

-- Restore funnel_id references from version data
UPDATE funnel_step 
SET funnel_id = fv.funnel_id
FROM funnel_version fv
WHERE funnel_step.funnel_version_id = fv.id;

-- Make funnel_id NOT NULL and add foreign key
ALTER TABLE funnel_step ALTER COLUMN funnel_id SET NOT NULL;
ALTER TABLE funnel_step 
ADD CONSTRAINT funnel_step_funnel_id_fkey 
FOREIGN KEY (funnel_id) REFERENCES funnel(id) ON DELETE CASCADE;

-- Drop version-related columns
ALTER TABLE funnel_step DROP COLUMN funnel_version_id;

-- Drop indexes
DROP INDEX IF EXISTS idx_funnel_step_version;
DROP INDEX IF EXISTS idx_funnel_publication_funnel;
DROP INDEX IF EXISTS idx_funnel_version_state;
DROP INDEX IF EXISTS idx_funnel_version_funnel;

-- Drop tables in dependency order
DROP TABLE IF EXISTS funnel_publication;
DROP TABLE IF EXISTS funnel_version;

-- Log rollback
INSERT INTO migration_log (migration_name, records_processed, completed_at, notes)
VALUES ('rollback_add_funnel_versioning', 
        (SELECT COUNT(*) FROM funnel_step), 
        NOW(),
        'Rolled back funnel versioning - version history lost');

COMMIT;
