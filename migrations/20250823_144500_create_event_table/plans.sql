-- Plans: per-event-name analytics

-- Daily count of one event name in a workspace
-- expect-index: idx_event_tenant_name_timestamp
SELECT date_trunc('day', timestamp) AS day, count(*)
FROM event
WHERE tenant_id = 2 AND workspace_id = 7 AND event_name = 'page_view'
  AND timestamp >= '2025-06-01' AND timestamp < '2025-07-01'
GROUP BY 1
ORDER BY 1;
