-- Plans: Example 3's event indexes (tenant, visitor and lead timelines, conversions, JSONB properties, sessions)

-- Tenant timeline: latest events of a workspace
-- expect-index: idx_event_tenant_timestamp
SELECT id, event_name, anonymous_id, timestamp, props
FROM event
WHERE tenant_id = 2 AND workspace_id = 7
ORDER BY timestamp DESC
LIMIT 50;

-- Visitor timeline
-- expect-index: idx_event_anonymous_timestamp
SELECT id, event_name, timestamp, props
FROM event
WHERE tenant_id = 2 AND workspace_id = 7 AND anonymous_id = 'anonymous_id-7'
ORDER BY timestamp DESC
LIMIT 100;

-- Lead timeline
-- expect-index: idx_event_lead_timestamp
SELECT id, event_name, timestamp, props
FROM event
WHERE tenant_id = 3 AND workspace_id = 8 AND lead_id = 8
ORDER BY timestamp DESC
LIMIT 100;

-- Latest conversions of a workspace
-- expect-index: idx_event_conversion
SELECT id, event_name, anonymous_id, lead_id, timestamp
FROM event
WHERE tenant_id = 2 AND workspace_id = 7 AND event_name IN ('purchase', 'signup', 'conversion')
ORDER BY timestamp DESC
LIMIT 50;

-- Events carrying a property (JSONB containment)
-- expect-index: idx_event_props_gin
SELECT id, tenant_id, workspace_id, timestamp
FROM event
WHERE props @> '{"id": 4207}';

-- Session replay: the events of one session in order
-- expect-index: idx_event_session
SELECT id, event_name, timestamp, props
FROM event
WHERE tenant_id = 2 AND workspace_id = 7 AND session_id = 'session_id-7'
ORDER BY timestamp;
