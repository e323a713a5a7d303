-- Plans: funnel versions, publications and steps (Example 5's indexes)

-- The seed's "Index Usage Verification" query: the published version of a funnel
-- expect-index: idx_funnel_version_state
SELECT * FROM funnel_version
WHERE funnel_id = 123 AND state = 'published';

-- Latest version of a funnel (the editor opens it)
-- expect-index: idx_funnel_version_funnel
SELECT id, version, state, created_at
FROM funnel_version
WHERE funnel_id = 207
ORDER BY version DESC
LIMIT 1;

-- Publication history of a funnel, newest first
-- expect-index: idx_funnel_publication_funnel
SELECT id, version, published_at, window_days, notes
FROM funnel_publication
WHERE funnel_id = 207
ORDER BY published_at DESC
LIMIT 10;

-- The ordered steps of a funnel version
-- expect-index: idx_funnel_step_version
SELECT id, order_index, type, label, match_rule
FROM funnel_step
WHERE funnel_version_id = 207
ORDER BY order_index;
